# tidewatch as a container image: the static binary FROM scratch, with the
# CA certificates to reach registries over TLS. It builds offline (no base
# image is pulled): `make image` builds the binary, copies the host's CA
# bundle beside it, and runs `docker build`.
FROM scratch
COPY bin/tidewatch /tidewatch
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The trigger processes talk to tidewatch over unix sockets in $TMPDIR (/tmp),
# which an image FROM scratch lacks: WORKDIR makes the folder (root's, 0755;
# running as another user, mount a tmpfs there: --tmpfs /tmp).
WORKDIR /tmp
WORKDIR /
# In a container the API must listen beyond loopback to be reached through a
# published port, so tidewatch requires auth to be configured
# (TIDEWATCH_SERVER_AUTH_USERS or TIDEWATCH_SERVER_API_TOKENS; see the README).
ENV TIDEWATCH_STORE_PATH=/data \
    TIDEWATCH_SERVER_ADDRESS=0.0.0.0
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["/tidewatch", "healthcheck"]
ENTRYPOINT ["/tidewatch"]
CMD ["serve"]

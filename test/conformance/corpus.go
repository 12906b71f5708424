package conformance

// corpusTemplate is the conformance corpus: a compose project of one
// service per group of settings. %[1]s is the test app's repository (no
// VOLUME), %[2]s the same app with VOLUME /data, %[3]s a /24 prefix
// ("10.231.7") for the static-address network. Each image line ends with
// its service's name, so that a rewrite touches that service only.
const corpusTemplate = `# tidewatch conformance corpus
x-common: &common
  labels:
    tidewatch.test: "1"
    corpus: "yes"

services:
  vol-anon:
    <<: *common
    image: %[2]s:1.0.0 # vol-anon
    volumes:
      - /cache
  vol-named:
    <<: *common
    image: %[1]s:1.0.0 # vol-named
    volumes:
      - data:/data
      - type: volume
        source: nocopy
        target: /nocopy
        volume:
          nocopy: true
      - ./bind:/bind:ro
  net-alias:
    <<: *common
    image: %[1]s:1.0.0 # net-alias
    networks:
      front:
        aliases: [alias-one, alias-two]
      back: {}
  net-ip:
    <<: *common
    image: %[1]s:1.0.0 # net-ip
    networks:
      fixed:
        ipv4_address: %[3]s.10
  ports:
    <<: *common
    image: %[1]s:1.0.0 # ports
    ports:
      - "127.0.0.1::8080"
      - "127.0.0.1::8081/udp"
    expose: ["9000"]
  env:
    <<: *common
    image: %[1]s:1.0.0 # env
    env_file: [./app.env]
    environment:
      MODE: production
      EMPTY: ""
      FROM_ENV_FILE: overridden
  labels:
    image: %[1]s:1.0.0 # labels
    labels:
      - tidewatch.test=1
      - org.example.team=ops
      - org.example.quoted="a b"
  health:
    <<: *common
    image: %[1]s:1.0.0 # health
    healthcheck:
      test: ["CMD", "/app", "-probe"]
      interval: 2s
      timeout: 3s
      retries: 4
      start_period: 1s
  restart:
    <<: *common
    image: %[1]s:1.0.0 # restart
    restart: unless-stopped
    stop_signal: SIGINT
    stop_grace_period: 4s
  resources:
    <<: *common
    image: %[1]s:1.0.0 # resources
    mem_limit: 96m
    memswap_limit: 192m
    mem_reservation: 32m
    cpus: 0.5
    cpu_shares: 512
    pids_limit: 64
    shm_size: 16m
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    oom_score_adj: 100
  devices:
    <<: *common
    image: %[1]s:1.0.0 # devices
    devices:
      - /dev/null:/dev/xnull:rw
  caps:
    <<: *common
    image: %[1]s:1.0.0 # caps
    cap_add: [NET_ADMIN, SYS_TIME]
    cap_drop: [MKNOD]
    security_opt: ["no-new-privileges:true"]
    read_only: true
  logging:
    <<: *common
    image: %[1]s:1.0.0 # logging
    logging:
      driver: json-file
      options:
        max-size: 1m
        max-file: "2"
  sysctls:
    <<: *common
    image: %[1]s:1.0.0 # sysctls
    sysctls:
      net.core.somaxconn: 1024
      net.ipv4.tcp_syncookies: 0
  tmpfs-user:
    <<: *common
    image: %[1]s:1.0.0 # tmpfs-user
    user: "1000:1000"
    group_add: ["2000"]
    tmpfs:
      - /run:size=1m
      - /scratch
  entry:
    <<: *common
    image: %[1]s:1.0.0 # entry
    entrypoint: ["/app", "-addr", ":8081"]
    command: ["-probe-url", "http://127.0.0.1:8081/healthz"]
    working_dir: /
    hostname: entry-host
    domainname: example.test
    extra_hosts: ["db.example.test:10.0.0.5"]
    dns: [10.0.0.53]
    dns_search: [example.test]
    init: true
    tty: true
    stdin_open: true

volumes:
  data:
    labels: {tidewatch.test: "1"}
  nocopy:
    labels: {tidewatch.test: "1"}

networks:
  front:
    labels: {tidewatch.test: "1"}
  back:
    labels: {tidewatch.test: "1"}
  fixed:
    labels: {tidewatch.test: "1"}
    ipam:
      config:
        - subnet: %[3]s.0/24
`

// corpusEnvFile is app.env beside the compose file.
const corpusEnvFile = "FROM_ENV_FILE=file\nONLY_IN_FILE=yes\n"

// corpusServices are the corpus's services, in file order.
var corpusServices = []string{
	"vol-anon", "vol-named", "net-alias", "net-ip", "ports", "env", "labels", "health", "restart",
	"resources", "devices", "caps", "logging", "sysctls", "tmpfs-user", "entry",
}

// sampleServices are recreated in the normal test run; the whole corpus
// with the faults build tag (make faults).
var sampleServices = []string{"vol-anon", "vol-named", "net-alias", "health", "entry"}

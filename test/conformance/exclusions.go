package conformance

// engineExclusions are the inspect fields that may differ between two
// recreates of the same service by the same compose (engine mode against
// the compose v2 CLI): what names a container, a run or a moment, not a
// setting.
var engineExclusions = []exclusion{
	ex(`Id`, "the container's own ID"),
	ex(`Created`, "creation time"),
	ex(`State\..*`, "run state: pid, start and finish times, health log of this run"),
	ex(`(ResolvConfPath|HostnamePath|HostsPath|LogPath)`, "paths under the container's own ID"),
	ex(`Config\.Hostname`, "the engine's default hostname is the container's short ID (a service's own hostname: is compared)"),
	ex(`RestartCount`, "runtime counter"),
	ex(`ExecIDs(\[\d+\])?`, "health probes running at the moment of the inspect"),
	ex(`NetworkSettings\.(SandboxID|SandboxKey|Bridge|HairpinMode|LinkLocalIPv6Address|LinkLocalIPv6PrefixLen|SecondaryIPAddresses|SecondaryIPv6Addresses|EndpointID|Gateway|GlobalIPv6Address|GlobalIPv6PrefixLen|IPAddress|IPPrefixLen|IPv6Gateway|MacAddress)`, "the network sandbox of this run"),
	ex(`NetworkSettings\.Networks\.[^.]+\.(NetworkID|EndpointID|Gateway|IPAddress|IPPrefixLen|IPv6Gateway|GlobalIPv6Address|GlobalIPv6PrefixLen|MacAddress|DriverOpts)`, "the endpoint of this run: network IDs differ as each mode's project makes its networks anew; addresses are allocated (static ones are in IPAMConfig, compared)"),
	ex(`NetworkSettings\.Ports\..*\.HostPort`, "an ephemeral host port (127.0.0.1::8080) is allocated at each start"),
	ex(`Mounts\[\d+\]\.(Name|Source)|Mounts`, "anonymous volumes are named by the engine; that each mode mounts the previous container's own volumes again is checked with markers"),
	ex(`Image`, "the image ID is sha256:<id> in both after normalization; Config.Image (the reference) is compared"),
	ex(`Name`, "container name"),
	ex(`Config\.Labels\.com\.docker\.compose\.version`, "the version of compose that made the container: the compose v2 CLI of the bed (2.40.3) and the library linked into tidewatch (v5) are different releases; the config-hash label, compared, is the same"),
}

// v1Exclusions are the fields where Debian's docker-compose 1.29 (Python)
// legitimately differs from compose v2 when it recreates a service.
var v1Exclusions = []exclusion{
	ex(`Config\.Labels\.com\.docker\.compose\.(config-hash|version|image|depends_on|replace|project\.config_files|project\.environment_file)`, "compose v2 labels: 1.29 hashes another serialization of the service, writes its own version, and does not write the image, depends_on, replace labels; config_files: 1.29 writes paths relative to working_dir, v2 absolute"),
	ex(`HostConfig\.(Binds|Mounts)`, "1.29 mounts volumes and binds as Binds (name:/path:rw) and carries anonymous volumes over as binds; v2 as Mounts; the mounted volumes are compared in Mounts and checked with markers"),
	ex(`NetworkSettings\.Networks\.[^.]+\.Aliases`, "1.29 adds the container's short ID as an alias, v2 the container name; the service name and the aliases of the file are in both"),
	ex(`NetworkSettings\.Networks\.[^.]+\.DNSNames`, "absent from API 1.41"),
	ex(`Config\.Volumes`, "1.29 declares bind and named volume destinations as Config.Volumes too"),
	ex(`Config\.(AttachStdout|AttachStderr)`, "1.29 creates a detached service's container unattached, v2 attached; neither attaches to a detached container"),
}

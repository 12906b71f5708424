package conformance

// engineExclusions are the inspect fields that may differ between two
// recreates of the same service by the same compose (engine mode against
// the compose v2 CLI): what names a container, a run or a moment, not a
// setting. Before the comparison, normalize replaces every 64-hex ID
// (container, volume, image), the container's short ID and the project's
// name by placeholders, so the container's ID, its paths, its default
// hostname and its image ID are compared as placeholders; it compares
// lists whose order is no setting as sets, and takes null, empty and
// absent as the same.
var engineExclusions = []exclusion{
	ex(`Created`, "creation time"),
	ex(`State\..*`, "run state: pid, start and finish times, health log of this run"),
	ex(`RestartCount`, "runtime counter"),
	ex(`ExecIDs(\[\d+\])?`, "health probes running at the moment of the inspect"),
	ex(`NetworkSettings\.(SandboxID|SandboxKey|Bridge|HairpinMode|LinkLocalIPv6Address|LinkLocalIPv6PrefixLen|SecondaryIPAddresses|SecondaryIPv6Addresses|EndpointID|Gateway|GlobalIPv6Address|GlobalIPv6PrefixLen|IPAddress|IPPrefixLen|IPv6Gateway|MacAddress)`, "the network sandbox of this run"),
	ex(`NetworkSettings\.Networks\.[^.]+\.(NetworkID|EndpointID|Gateway|IPAddress|IPPrefixLen|IPv6Gateway|GlobalIPv6Address|GlobalIPv6PrefixLen|MacAddress|DriverOpts)`, "the endpoint of this run: network IDs differ as each mode's project makes its networks anew; addresses are allocated (static ones are in IPAMConfig, compared)"),
	ex(`NetworkSettings\.Ports\..*\.HostPort`, "an ephemeral host port (127.0.0.1::8080) is allocated at each start"),
	ex(`Name`, "container name: compose v2 names project-service-1, 1.29 project_service_1"),
	ex(`Config\.Labels\.com\.docker\.compose\.version`, "the version of compose that made the container: the compose v2 CLI of the bed (2.40.3) and the library linked into tidewatch (v5) are different releases; the config-hash label, compared, is the same"),
}

// v1Exclusions are the fields where Debian's docker-compose 1.29 (Python)
// legitimately differs from compose v2 when it recreates a service.
var v1Exclusions = []exclusion{
	ex(`Mounts`, "the runtime view of the mounts: 1.29 does not carry an image's VOLUME over (a 1.29 defect: it reads ContainerConfig, which these images lack), so vol-anon's /data is another volume; the settings are in HostConfig, the volumes checked with markers"),
	ex(`Config\.Labels\.com\.docker\.compose\.(config-hash|version|image|depends_on|replace|project\.config_files|project\.environment_file)`, "compose v2 labels: 1.29 hashes another serialization of the service, writes its own version, and does not write the image, depends_on, replace labels; config_files: 1.29 writes paths relative to working_dir, v2 absolute"),
	ex(`HostConfig\.(Binds|Mounts)`, "1.29 mounts volumes and binds as Binds (name:/path:rw) and carries anonymous volumes over as binds; v2 as Mounts; that each mounts the volumes it should is checked with markers (and for engine mode against v2, field by field)"),
	ex(`NetworkSettings\.Networks\.[^.]+\.Aliases`, "1.29 adds the container's short ID as an alias, v2 the container name; the service name and the aliases of the file are in both"),
	ex(`Config\.(AttachStdout|AttachStderr)`, "1.29 creates a detached service's container unattached, v2 attached; neither attaches to a detached container"),
}

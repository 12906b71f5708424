package conformance

import "regexp"

// runtimeFields name a container, a run or a moment, not a setting: they
// differ between any two containers made with the same options. Before
// the comparison, normalize replaces every 64-hex ID (container, volume,
// image) and the container's short ID by placeholders, so the paths and
// default hostname that hold them are compared as placeholders.
var runtimeFields = []exclusion{
	ex(`Created`, "creation time"),
	ex(`Name`, "container name: the recreated container has the original's, the reference its own"),
	ex(`State\..*`, "run state: pid, start and finish times, health log of this run"),
	ex(`RestartCount`, "runtime counter"),
	ex(`ExecIDs(\[\d+\])?`, "health probes running at the moment of the inspect"),
	ex(`NetworkSettings\.(SandboxID|SandboxKey|Bridge|HairpinMode|LinkLocalIPv6Address|LinkLocalIPv6PrefixLen|SecondaryIPAddresses|SecondaryIPv6Addresses|EndpointID|Gateway|GlobalIPv6Address|GlobalIPv6PrefixLen|IPAddress|IPPrefixLen|IPv6Gateway|MacAddress)`, "the network sandbox of a run"),
	ex(`NetworkSettings\.Networks\.[^.]+\.(NetworkID|EndpointID|Gateway|IPAddress|IPPrefixLen|IPv6Gateway|GlobalIPv6Address|GlobalIPv6PrefixLen|MacAddress|DriverOpts)`, "the endpoint of a run: addresses are allocated at start (static ones are in IPAMConfig, compared)"),
	ex(`NetworkSettings\.Ports.*`, "the host ports a run was given (127.0.0.1::8080 allocates one at each start); the bindings asked for are HostConfig.PortBindings, compared"),
}

// runExclusions are the fields where the recreated container may differ
// from the reference (docker create with the same options on the new
// image, never started), besides runtimeFields.
var runExclusions = append([]exclusion{
	ex(`Config\.(AttachStdin|AttachStdout|AttachStderr|StdinOnce)`, "docker create attaches the streams, docker run -d does not; the before/after comparison holds them equal to the original's"),
	ex(`HostConfig\.Mounts`, "an anonymous volume carried over is mounted by name (the reference gets a fresh one); checkMounts holds every mount of the original in the recreated, and the runtime Mounts (compared) show the same destinations, types and modes"),
	ex(`AppArmorProfile`, "set by the engine when a container first starts; the reference never started"),
	ex(`HostnamePath|HostsPath|ResolvConfPath|LogPath`, "files the engine writes when a container first starts (their paths hold the container's ID); the reference never started"),
}, runtimeFields...)

// imageFields are what an image gives a container: the only fields that
// may change between the original container and the recreated one.
var imageFields = regexp.MustCompile(`^(Image|Path|Args(\[\d+\])?|Config\.(Image|Env|(Cmd|Entrypoint)(\[\d+\])?|WorkingDir|User|StopSignal|Healthcheck\..*|Volumes\..*|Labels\..*|ExposedPorts\..*)|Mounts|HostConfig\.Mounts)$`)

package conformance

// A runVariant is one `docker run` of the docker-run corpus: the options
// a user gives, each recreated by the docker trigger on a new image.
type runVariant struct {
	// name names the variant.
	name string
	// args are the docker run options (before the image). Placeholders:
	// {net} {net2} a user network each, {fixed} a network with a /24 whose
	// prefix is {prefix}, {named} {named2} named volumes, {bind} a folder,
	// {envfile} an env file, {leader} a running container.
	args []string
	// cmd are the arguments after the image.
	cmd []string
	// connect are the options of a `docker network connect` run after it
	// (and after the reference's create), nil for none.
	connect []string
	// marked are the paths of volumes a marker is written into before the
	// recreate and read back after it.
	marked []string
}

// runCorpus is the docker-run corpus. Every variant runs the shifting
// image (see shiftingImage), whose defaults all change between 1.0.0 and
// 1.1.0, so that each variant also checks that what the user did not set
// follows the new image. No option repeats the old image's own default
// (a value equal to it counts as the image's, by design, and would follow
// the new image where a fresh docker run keeps it): that case is a unit
// test of core/docker.
var runCorpus = []runVariant{
	{name: "defaults", marked: []string{"/both", "/v1data"}},
	{name: "overrides", args: []string{
		"-e", "MODE=mine", "-e", "OWN=1", "-w", "/mine", "--user", "0:0", "--label", "org.example.version=mine",
		"--stop-signal", "SIGHUP", "-v", "/mine-vol", "--health-interval", "5s", "--health-retries", "4",
		"--entrypoint", "/app"}, cmd: []string{"-addr", ":8080", "-probe-url", "http://127.0.0.1:8080/healthz"}, marked: []string{"/mine-vol"}},
	{name: "cmd", cmd: []string{"-probe-url", "http://localhost:8080/healthz"}},
	{name: "vol-anon", args: []string{"-v", "/cache", "--mount", "type=volume,dst=/mountvol"}, marked: []string{"/cache", "/mountvol", "/both"}},
	{name: "vol-named-bind", args: []string{"-v", "{named}:/data", "--mount", "type=volume,src={named2},dst=/nocopy,volume-nocopy", "-v", "{bind}:/bind:ro"}, marked: []string{"/data", "/nocopy"}},
	{name: "net-alias", args: []string{"--network", "{net}", "--network-alias", "alias-one", "--network-alias", "alias-two"}, connect: []string{"--alias", "extra-alias", "{net2}"}},
	{name: "net-ip", args: []string{"--network", "{fixed}", "--ip", "{prefix}.10"}},
	{name: "net-container", args: []string{"--network", "container:{leader}"}},
	{name: "ports", args: []string{"-p", "127.0.0.1::8080", "-p", "127.0.0.1::8081/udp", "--expose", "9000"}},
	{name: "env", args: []string{"--env-file", "{envfile}", "-e", "MODE=production", "-e", "EMPTY=", "-e", "FROM_ENV_FILE=overridden"}},
	{name: "labels", args: []string{"--label", "org.example.team=ops", "--label", "org.example.quoted=a b", "--label", "org.example.only-v1=mine"}},
	{name: "health", args: []string{"--health-interval", "3s", "--health-timeout", "4s", "--health-retries", "5", "--health-start-period", "1s"}},
	{name: "health-off", args: []string{"--no-healthcheck"}},
	{name: "restart", args: []string{"--restart", "unless-stopped", "--stop-signal", "SIGINT", "--stop-timeout", "4"}},
	{name: "resources", args: []string{"--memory", "96m", "--memory-swap", "192m", "--memory-reservation", "32m", "--cpus", "0.5",
		"--cpu-shares", "512", "--pids-limit", "64", "--shm-size", "16m", "--ulimit", "nofile=1024:2048", "--oom-score-adj", "100"}},
	{name: "devices", args: []string{"--device", "/dev/null:/dev/xnull:rw"}},
	{name: "caps", args: []string{"--cap-add", "NET_ADMIN", "--cap-add", "SYS_TIME", "--cap-drop", "MKNOD",
		"--security-opt", "no-new-privileges:true", "--read-only"}},
	{name: "sysctls", args: []string{"--sysctl", "net.core.somaxconn=1024", "--sysctl", "net.ipv4.tcp_syncookies=0"}},
	{name: "tmpfs", args: []string{"--tmpfs", "/run:size=1m", "--tmpfs", "/scratch"}},
	{name: "logging", args: []string{"--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=2"}},
	{name: "user", args: []string{"--user", "1000:1000", "--group-add", "2000"}},
	{name: "volumes-from", args: []string{"--volumes-from", "{leader}:ro"}},
	{name: "link", args: []string{"--link", "{leader}:db", "--restart", "on-failure:3"}},
	{name: "namespaces", args: []string{"--ipc", "shareable", "--pid", "host", "--uts", "host", "--cgroupns", "private"}},
	{name: "host", args: []string{"--hostname", "entry-host", "--domainname", "example.test", "--add-host", "db.example.test:10.0.0.5",
		"--dns", "10.0.0.53", "--dns-search", "example.test", "--init", "-t", "-i"}},
}

// runSample are the variants recreated in the normal test run; the whole
// corpus with the faults build tag (make faults).
var runSample = []string{"defaults", "overrides", "vol-anon", "vol-named-bind", "net-ip", "net-container"}

// runEnvFile is the --env-file of the env variant.
const runEnvFile = "FROM_ENV_FILE=file\nONLY_IN_FILE=yes\n"

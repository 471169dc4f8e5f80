//! The command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Driftless: GitOps for Kubernetes manifests, on its own runtime.
#[derive(Debug, Parser)]
#[command(name = "driftless", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// How logs are written to standard error: text for people, json (one
    /// object a line, with the spans it happened in) for log collectors.
    #[arg(long, value_enum, env = "DRIFTLESS_LOG_FORMAT", default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// `--verify-commits-mode`, after Flux's `spec.verify.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// The head commit only.
    #[default]
    Head,
    /// Every commit since the last applied one (all of history before the
    /// first sync): an unsigned commit anywhere in a push refuses it.
    All,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new GitOps repository from the template, with a sample app,
    /// and make its first commit.
    Init(InitArgs),
    /// Check manifests the way the API server would, before anything runs.
    ///
    /// Exit status: 0 valid, 1 invalid, 2 usage or I/O error.
    Validate(ValidateArgs),
    /// Show what changing from one revision to another would do.
    ///
    /// Exit status: 0 planned, 1 the target revision is invalid (the daemon
    /// would refuse it), 2 usage, I/O or git error.
    Plan(PlanArgs),
    /// What merging a revision would change in what runs now (`plan
    /// --live`), drift included.
    ///
    /// Exit status: 0 no differences, 1 differences, 2 the revision is
    /// invalid (the daemon would refuse it) or usage, I/O, git or API error.
    Diff(DiffArgs),
    /// Manage the node's container images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Encrypted Secrets in git (SOPS with age): make the node's identity,
    /// encrypt a Secret manifest.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Run the daemon: watch a git repository and make this machine match
    /// it, continuously.
    Up(Box<UpArgs>),
    /// List objects, as `kubectl get` does.
    Get(GetArgs),
    /// Show an object in detail, with its events.
    Describe(DescribeArgs),
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Follow or list a workload's rollouts.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// The audit trail: every sync, its commit, author, result and actions.
    History(HistoryArgs),
    /// CPU and memory in use by pods or nodes (`top pods`, `top nodes`).
    #[command(subcommand)]
    Top(TopCommand),
    /// What the daemon is syncing, what runs, and the last refusal.
    Status(ConnectArgs),
    /// Look at the repository now instead of waiting for the next poll.
    Sync(ConnectArgs),
    /// Delete objects: declared ones by a commit removing their documents;
    /// a pod git does not declare directly (its owner replaces it).
    Delete(DeleteArgs),
    /// Set a workload's replicas, as a commit (`scale deploy/web --replicas 5`).
    Scale(ScaleArgs),
    /// Edit an object's document in $KUBE_EDITOR or $EDITOR; saving
    /// commits it (validated first, refused edits reopen with the reason).
    Edit(WriteTarget),
    /// Set a pod template's images, env or resources, as a commit.
    #[command(subcommand)]
    Set(SetCommand),
    /// Add or remove labels (`k=v`, `k-`), as a commit.
    Label(MetadataArgs),
    /// Add or remove annotations (`k=v`, `k-`), as a commit.
    Annotate(MetadataArgs),
    /// Write objects from files into the repository, as one commit: each
    /// replaces the document declaring it, or gets a file of its own.
    Apply(ApplyArgs),
    /// Create a ConfigMap or Secret in the repository, as a commit.
    #[command(subcommand)]
    Create(CreateCommand),
    /// Declare a HorizontalPodAutoscaler for a workload, as a commit.
    Autoscale(AutoscaleArgs),
    /// Roll the repository's manifests back to an earlier commit of the
    /// branch, as one commit undoing every later change to them.
    Rollback(RollbackArgs),
    /// Mark a node unschedulable: pods already there stay, no new one is
    /// placed there.
    Cordon(NodeTarget),
    /// Mark a node schedulable again.
    Uncordon(NodeTarget),
    /// Cordon a node and evict its pods (gracefully, through the Eviction
    /// API), waiting until they are gone; DaemonSet pods stay.
    Drain(DrainArgs),
    /// Stop every pod of a data folder and remove the node's network set-up
    /// (after `up` has exited), as an uninstall does.
    Reset(ResetArgs),
    /// Forward local ports to a pod's, or to the pod behind a Service
    /// (`port-forward svc/web 8080:80`), on 127.0.0.1.
    PortForward(PortForwardArgs),
    /// Print a kubeconfig for the daemon's HTTPS listener, so that
    /// `KUBECONFIG=<(driftless kubeconfig) kubectl get pods` works.
    Kubeconfig(KubeconfigArgs),
    /// Print a shell completion script (`source <(driftless completion bash)`).
    Completion(CompletionArgs),
    /// Print the manual page, in roff (`driftless man | man -l -`).
    Man,
    /// Join a control plane as a node, through its API with a node token:
    /// run the pods bound to it, its cluster DNS and service proxy.
    Agent(AgentArgs),
}

/// `driftless port-forward`.
#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// `pod/NAME`, `svc/NAME` or a pod's name.
    pub target: String,
    /// `LOCAL:REMOTE`, `PORT` (the same both sides) or `:REMOTE` (any free
    /// local port).
    #[arg(required = true)]
    pub ports: Vec<String>,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `completion` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// How to reach the daemon.
#[derive(Clone, Debug, Args)]
pub struct ConnectArgs {
    /// The daemon's data folder (its socket is there).
    #[arg(long, env = "DRIFTLESS_DATA_DIR", default_value = "/var/lib/driftless", global = true)]
    pub data_dir: PathBuf,
    /// The daemon's HTTPS address instead (`https://127.0.0.1:6443`).
    #[arg(long, env = "DRIFTLESS_SERVER", global = true)]
    pub server: Option<String>,
    /// The bearer token for --server.
    #[arg(long, env = "DRIFTLESS_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// The CA the --server certificate must chain to (default: the
    /// daemon's own, `DATA_DIR/pki/ca.crt`).
    #[arg(long, env = "DRIFTLESS_CERTIFICATE_AUTHORITY", global = true)]
    pub certificate_authority: Option<PathBuf>,
}

/// What a node is: its name, network, cgroups and the rules for its pods;
/// `up` runs one beside the control plane, `agent` one alone.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// This node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// This node's address, as other nodes and the control plane reach it
    /// (its InternalIP; default: the gateway of its pod CIDR, which only
    /// this machine reaches). An agent must be given it.
    #[arg(long)]
    pub node_ip: Option<String>,
    /// The node bridge pods attach to.
    #[arg(long, default_value = "driftless0")]
    pub bridge: String,
    /// The pod CIDR of this node (`up`'s default: 10.244.0.0/24; an
    /// agent without one is given one by the control plane from its
    /// `--cluster-cidr`).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// The cluster CIDR holding every node's pod CIDR (`10.244.0.0/16`):
    /// routes to the other nodes' pod CIDRs are installed within it, and
    /// the rest of it is routed unreachable. Without it the node routes no
    /// other node's pods.
    #[arg(long)]
    pub cluster_cidr: Option<String>,
    /// The service CIDR, routed `local` on `lo` before anything runs.
    #[arg(long, default_value = "10.96.0.0/16")]
    pub service_cidr: String,
    /// The cluster DNS address pods are given.
    #[arg(long, default_value = "10.96.0.10")]
    pub cluster_dns: String,
    /// The cluster domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The cgroup pods go under (default: `driftless` beneath the daemon's).
    #[arg(long)]
    pub cgroup_root: Option<String>,
    /// The helper binary (default: `driftless-shim` beside this one).
    #[arg(long)]
    pub shim: Option<PathBuf>,
    /// Let pods use hostPath volumes.
    #[arg(long)]
    pub allow_host_path: bool,
    /// Let pods run privileged containers.
    #[arg(long)]
    pub allow_privileged: bool,
    /// A registry (`host:port`) to pull from over plain HTTP; repeatable.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Where the cluster DNS forwards names outside the cluster domain
    /// (`ip` or `ip:port`, repeatable; `none` to forward nothing). Default:
    /// the host's nameservers from /etc/resolv.conf.
    #[arg(long = "dns-upstream")]
    pub dns_upstreams: Vec<String>,
    /// The nftables table of the service proxy (default `driftless`, or
    /// `driftless_<bridge>` for another bridge than `driftless0`).
    #[arg(long)]
    pub nft_table: Option<String>,
}

/// `driftless up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The repository: a local folder (watched for new commits) or a URL
    /// (fetched on an interval).
    #[arg(long)]
    pub repo: String,
    /// The branch (default: a local repository's current branch, `main`
    /// for a URL).
    #[arg(long)]
    pub branch: Option<String>,
    /// The folder (or file) inside the repository holding the manifests.
    #[arg(long, default_value = "")]
    pub path: String,
    /// The data folder: store, images, pods, socket.
    #[arg(long, env = "DRIFTLESS_DATA_DIR", default_value = "/var/lib/driftless")]
    pub data_dir: PathBuf,
    /// Where this machine's node keeps its state (containers, pod volumes,
    /// images): the data folder by default. Control-plane instances of one
    /// machine sharing an etcd store share it: the one elected runs the
    /// node and adopts what the last one ran.
    #[arg(long, value_name = "DIR")]
    pub node_dir: Option<PathBuf>,
    /// Where the objects are kept: the embedded SQLite file in the data
    /// folder (the default), or etcd, `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`
    /// (`etcds://` for TLS, with the three files below; prefix `/registry`).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Recover from a damaged embedded store: keep its files aside (as
    /// `store.db.damaged-<time>`), start with an empty store, rebuild it
    /// from git, and replace the pods the node finds running. Only for a
    /// store `up` refused as damaged; see docs/ARCHITECTURE.md, "Recovering
    /// the store".
    #[arg(long, conflicts_with = "store")]
    pub rebuild_store: bool,
    /// The CA that signed the etcd members' certificates (kube-apiserver's
    /// --etcd-cafile).
    #[arg(long, value_name = "FILE", requires_all = ["etcd_certfile", "etcd_keyfile"])]
    pub etcd_cafile: Option<PathBuf>,
    /// This daemon's client certificate for etcd.
    #[arg(long, value_name = "FILE", requires = "etcd_cafile")]
    pub etcd_certfile: Option<PathBuf>,
    /// The key of --etcd-certfile.
    #[arg(long, value_name = "FILE", requires = "etcd_cafile")]
    pub etcd_keyfile: Option<PathBuf>,
    /// How often to look at the branch: a fallback to watching for a local
    /// repository, the fetch interval for a URL (default 2s local, 15s URL).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub interval: Option<std::time::Duration>,
    /// How often the node samples its pods' CPU and memory for
    /// `metrics.k8s.io`, `top` and the HPA (metrics-server's flag).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub metric_resolution: std::time::Duration,
    /// How often each HorizontalPodAutoscaler is evaluated (the
    /// controller manager's flag).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15s")]
    pub horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// How long a node may go without renewing its Lease or posting its
    /// status before it is marked Unknown and tainted unreachable (the
    /// controller manager's flag).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "40s")]
    pub node_monitor_grace_period: std::time::Duration,
    /// How long pods stay on a node that is unreachable or not ready
    /// unless they tolerate it otherwise (kube-apiserver's flag; here it
    /// covers not-ready too).
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: u64,
    /// Apply a revision that declares no objects (deleting all that runs)
    /// instead of refusing it.
    #[arg(long)]
    pub allow_empty: bool,
    /// Roll back every Deployment and StatefulSet whose rollout fails (not
    /// only those annotated `driftless.dev/rollback: on-failure`): the
    /// daemon commits the `rollout undo` itself.
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// Commit automatic rollbacks to a new branch
    /// `PREFIX/<kind>-<name>-<commit>` for review, instead of the watched
    /// branch.
    #[arg(long, value_name = "PREFIX")]
    pub rollback_branch: Option<String>,
    /// Refuse heads not signed by a key in this folder: SSH public keys in
    /// git's `allowed_signers` format (or `.pub` files) and OpenPGP public
    /// keys (`.asc`, `.gpg`). A refused head is refused whole, like an
    /// invalid commit.
    #[arg(long, value_name = "KEYS")]
    pub verify_commits: Option<PathBuf>,
    /// Serve forge webhooks on this address (`POST /hooks/<name>`): a
    /// verified push of the watched branch syncs at once instead of at the
    /// next poll. Needs --webhook-secret-file.
    #[arg(long, value_name = "ADDRESS", requires = "webhook_secret_file")]
    pub webhook_listen: Option<String>,
    /// The webhook secret, as configured in the forge (GitHub, Gitea,
    /// Forgejo and Bitbucket sign with it; GitLab sends it as its token).
    #[arg(long, value_name = "FILE", requires = "webhook_listen")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Post a JSON event (Flux's shape) to this URL for every commit
    /// applied or refused, failed rollout and automatic rollback.
    /// Repeatable.
    #[arg(long, value_name = "URL")]
    pub notify: Vec<String>,
    /// Sign notifications with this key (`X-Signature: sha256=<hex HMAC>`);
    /// default: the webhook secret, if any.
    #[arg(long, value_name = "FILE")]
    pub notify_secret_file: Option<PathBuf>,
    /// Which commits --verify-commits checks.
    #[arg(long, value_enum, default_value_t = VerifyMode::Head, requires = "verify_commits")]
    pub verify_commits_mode: VerifyMode,
    /// Also serve the API over HTTPS at this address (`127.0.0.1:6443`),
    /// for kubectl and remote CLIs: `driftless kubeconfig` prints a
    /// kubeconfig for it.
    #[arg(long)]
    pub listen: Option<String>,
    /// The bearer tokens HTTPS clients present, as kube-apiserver's
    /// `--token-auth-file` (`token,user,uid,"groups"` per line; the user is
    /// the author of the commits their writes make; a file holding one bare
    /// token means user `admin`). Default: `DATA_DIR/tokens.csv`, made with
    /// an admin token on first start.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The HTTPS certificate chain (PEM) instead of the one the daemon
    /// makes under `DATA_DIR/pki`, signed by its own CA.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Another name or address the made certificate must cover
    /// (repeatable); localhost, the node name, 127.0.0.1, ::1, the
    /// --listen address and the node's address always are.
    #[arg(long = "tls-san")]
    pub tls_sans: Vec<String>,
    /// Addresses for LoadBalancer Services (`127.0.0.100-127.0.0.120`,
    /// comma-separated ranges or addresses). Without a pool they stay
    /// pending, as without a cloud provider.
    #[arg(long = "lb-pool", default_value = "")]
    pub lb_pool: String,
    /// Where the Ingress serves plain HTTP (`''` for nowhere).
    #[arg(long, default_value = "0.0.0.0:80")]
    pub ingress_http: String,
    /// Where the Ingress serves HTTPS (`''` for nowhere).
    #[arg(long, default_value = "0.0.0.0:443")]
    pub ingress_https: String,
    /// The IngressClass this node serves (Ingresses naming no class are
    /// served too).
    #[arg(long, default_value = "driftless")]
    pub ingress_class: String,
    /// The size of the pod CIDR each node is given from `--cluster-cidr`
    /// when it joins without one.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// Run a pure control plane: no node of its own (no pods, cluster DNS,
    /// service proxy or Ingress here); nodes join with `driftless agent`.
    #[arg(long)]
    pub no_local_node: bool,
    /// The node's own flags.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `driftless kubeconfig`.
#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// The data folder of the daemon.
    #[arg(long, env = "DRIFTLESS_DATA_DIR", default_value = "/var/lib/driftless")]
    pub data_dir: PathBuf,
    /// The user of the tokens file whose token to use (default: the
    /// first).
    #[arg(long)]
    pub user: Option<String>,
    /// The server URL clients reach (default: `https://` and the --listen
    /// address, 127.0.0.1 for an unspecified one).
    #[arg(long)]
    pub server: Option<String>,
}

/// `driftless agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The control plane's API (`driftless up --listen`), as
    /// https://HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// A token of the control plane's tokens file whose user is
    /// `system:node:<node name>` in group `system:nodes`.
    #[arg(long, env = "DRIFTLESS_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The CA the API's certificate chains to (the control plane's
    /// `DATA_DIR/pki/ca.crt`).
    #[arg(long)]
    pub certificate_authority: PathBuf,
    /// Where the agent serves its pods' logs, exec, attach and
    /// port-forward to the control plane (default: the node's address,
    /// port 10250, the kubelet's).
    #[arg(long)]
    pub listen: Option<String>,
    /// The agent's data folder: its containers, volumes and images.
    #[arg(long, env = "DRIFTLESS_DATA_DIR", default_value = "/var/lib/driftless-agent")]
    pub data_dir: PathBuf,
    /// The node's own flags.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `driftless cordon|uncordon NODE`.
#[derive(Debug, Args)]
pub struct NodeTarget {
    /// The node's name.
    pub node: String,
    /// Where the daemon is.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless drain NODE`.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The node's name.
    pub node: String,
    /// Also evict pods no controller owns (nothing makes them again).
    #[arg(long)]
    pub force: bool,
    /// Leave DaemonSet pods (always: their controller would put them
    /// back), accepted as kubectl takes it.
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// How long to wait for the pods to be gone.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    pub timeout: std::time::Duration,
    /// Where the daemon is.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The data folder of the daemon to reset.
    #[arg(long, env = "DRIFTLESS_DATA_DIR", default_value = "/var/lib/driftless")]
    pub data_dir: PathBuf,
    /// Also delete the data folder (store, images, volumes).
    #[arg(long)]
    pub purge: bool,
}

/// Output formats of `get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GetFormat {
    /// More columns.
    Wide,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
    /// `kind/name` only.
    Name,
}

/// What `get -o` asks for: a format, or a template or columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetOutput {
    /// `wide`, `yaml`, `json`, `name`.
    Format(GetFormat),
    /// `jsonpath=TEMPLATE` (kubectl's JSONPath template).
    JsonPath(String),
    /// `custom-columns=HEADER:EXPR,...`.
    CustomColumns(Vec<(String, String)>),
}

/// Reads `-o`'s value as kubectl does.
fn get_output(text: &str) -> Result<GetOutput, String> {
    if let Some(template) = text.strip_prefix("jsonpath=") {
        return Ok(GetOutput::JsonPath(template.to_owned()));
    }
    if let Some(spec) = text.strip_prefix("custom-columns=") {
        let columns = spec
            .split(',')
            .map(|column| {
                column
                    .split_once(':')
                    .map(|(h, e)| (h.to_owned(), e.to_owned()))
                    .ok_or_else(|| format!("custom-columns format: expected HEADER:EXPRESSION, got {column:?}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        return Ok(GetOutput::CustomColumns(columns));
    }
    GetFormat::from_str(text, false).map(GetOutput::Format).map_err(|_| {
        format!("unable to match a printer suitable for the output format {text:?}, allowed formats are: custom-columns,json,jsonpath,name,wide,yaml")
    })
}

/// `driftless get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The kind (`pods`, `deploy`, `svc`...; several with commas; `all`), or
    /// `kind/name`.
    pub resource: String,
    /// Names, to show only those (or more `kind/name`s).
    pub names: Vec<String>,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// A label selector (`app=web,tier in (a,b)`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Output format: wide, yaml, json, name, jsonpath=TEMPLATE,
    /// custom-columns=HEADER:EXPR,...
    #[arg(short, long, value_parser = get_output)]
    pub output: Option<GetOutput>,
    /// Sort by the value of a JSONPath expression (`.metadata.name`).
    #[arg(long)]
    pub sort_by: Option<String>,
    /// After listing, print changes as they happen.
    #[arg(short, long)]
    pub watch: bool,
    /// Show each object's labels as the last column.
    #[arg(long)]
    pub show_labels: bool,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The kind (or `kind/name` as one argument).
    pub resource: String,
    /// The name; without one, every object of the kind is described.
    pub name: Option<String>,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Describe the objects this label selector picks (`app=web`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod.
    pub pod: String,
    /// The container (needed when the pod has several).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Keep printing as the container writes.
    #[arg(short, long)]
    pub follow: bool,
    /// The previous instance's logs (before its last restart).
    #[arg(short, long)]
    pub previous: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<usize>,
    /// Prefix each line with its time.
    #[arg(long)]
    pub timestamps: bool,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pod.
    pub pod: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    /// The container (needed when the pod has several).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Pass standard input to the command.
    #[arg(short, long)]
    pub stdin: bool,
    /// Give the command a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless top ...`.
#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Each pod's CPU (cores) and memory (bytes) over the last window.
    #[command(visible_aliases = ["pod", "po"])]
    Pods(TopPodsArgs),
    /// The node's CPU and memory, and their share of what it allocates.
    #[command(visible_aliases = ["node", "no"])]
    Nodes(TopNodesArgs),
}

/// `driftless top pods`.
#[derive(Debug, Args)]
pub struct TopPodsArgs {
    /// Only this pod.
    pub name: Option<String>,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// A label selector (`app=web`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// A line per container.
    #[arg(long)]
    pub containers: bool,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless top nodes`.
#[derive(Debug, Args)]
pub struct TopNodesArgs {
    /// Only this node.
    pub name: Option<String>,
    /// A label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless rollout ...`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Wait for a rollout to finish; exit 1 if it fails or times out.
    Status(RolloutArgs),
    /// List a workload's revisions with the commit that made each.
    History(RolloutArgs),
    /// Restart a workload's pods (a commit writing the template's
    /// `kubectl.kubernetes.io/restartedAt`).
    Restart(WriteTarget),
    /// Pause a Deployment's rollouts (a commit setting `spec.paused`).
    Pause(WriteTarget),
    /// Resume a paused Deployment (a commit removing `spec.paused`).
    Resume(WriteTarget),
    /// Go back to an earlier revision: `git revert` of the commit that made
    /// the current one when it reverts cleanly, else a commit restoring the
    /// revision's template.
    Undo(UndoArgs),
}

/// What every verb that commits takes.
#[derive(Debug, Args)]
pub struct WriteOptions {
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Print the change and its plan; commit nothing (`client`, `server`
    /// and a bare `--dry-run` all mean this; `none` commits).
    #[arg(long, num_args = 0..=1, default_missing_value = "server", value_name = "STRATEGY")]
    pub dry_run: Option<String>,
    /// The commit's subject instead of the verb's own words.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Commit on this new branch (from the watched one) and print the plan
    /// for its pull request, instead of committing to the watched branch.
    #[arg(long)]
    pub branch: Option<String>,
    /// The author, `Name <email>` (default: your git identity).
    #[arg(long)]
    pub author: Option<String>,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// A verb's object and options.
#[derive(Debug, Args)]
pub struct WriteTarget {
    /// `deployment/web` (or the kind, then the name).
    pub target: String,
    /// The name, when the kind is given alone.
    pub name: Option<String>,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// `driftless rollout undo`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The workload.
    #[command(flatten)]
    pub target: WriteTarget,
    /// The revision to go back to (default: the one before the current).
    #[arg(long, default_value_t = 0)]
    pub to_revision: i64,
}

/// `driftless rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The commit to go back to (an id, a short id, `HEAD~2`...).
    pub commit: String,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// `driftless scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The workload.
    #[command(flatten)]
    pub target: WriteTarget,
    /// The new number of replicas.
    #[arg(long)]
    pub replicas: i64,
    /// Refuse unless git declares this many now.
    #[arg(long)]
    pub current_replicas: Option<i64>,
}

/// `driftless set`.
#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// `set image deploy/web app=busybox:1.36` (`*=IMAGE` for every container).
    Image(SetImageArgs),
    /// `set env deploy/web KEY=VALUE KEY-`.
    Env(SetEnvArgs),
    /// `set resources deploy/web --limits=cpu=200m,memory=512Mi --requests=cpu=100m`.
    Resources(SetResourcesArgs),
}

/// `driftless set image`.
#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// `KIND/NAME`.
    pub target: String,
    /// `CONTAINER=IMAGE`, one or more.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// `driftless set env`.
#[derive(Debug, Args)]
pub struct SetEnvArgs {
    /// `KIND/NAME`.
    pub target: String,
    /// `KEY=VALUE` to set, `KEY-` to remove.
    #[arg(required = true)]
    pub pairs: Vec<String>,
    /// Only this container.
    #[arg(short, long)]
    pub container: Option<String>,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// `driftless set resources`.
#[derive(Debug, Args)]
pub struct SetResourcesArgs {
    /// `KIND/NAME`.
    pub target: String,
    /// Only this container.
    #[arg(short, long)]
    pub container: Option<String>,
    /// `cpu=200m,memory=512Mi`.
    #[arg(long)]
    pub limits: Option<String>,
    /// `cpu=100m,memory=256Mi`.
    #[arg(long)]
    pub requests: Option<String>,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// `driftless label` and `annotate`.
#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// `KIND/NAME` (or the kind, then the name first among the pairs).
    pub target: String,
    /// `KEY=VALUE` to set, `KEY-` to remove.
    #[arg(required = true)]
    pub pairs: Vec<String>,
    /// Allow changing a value that is set.
    #[arg(long)]
    pub overwrite: bool,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// The workload of a `rollout` command.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// `deployment/web`, `sts/db` (or the kind, then the name).
    pub target: String,
    /// The name, when the kind is given alone.
    pub name: Option<String>,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// How long `status` waits (`0` waits forever).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Report once instead of waiting.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pub watch: bool,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many syncs to show, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Show every action and error.
    #[arg(short, long)]
    pub verbose: bool,
    /// Output format.
    #[arg(short, long, value_enum)]
    pub output: Option<GetFormat>,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Files or folders of manifests.
    #[arg(short, long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// `driftless create`.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// `create configmap NAME --from-literal=k=v --from-file=[key=]path`.
    #[command(alias = "cm")]
    Configmap(CreateDataArgs),
    /// `create secret generic NAME --from-literal=k=v --from-file=[key=]path`.
    Secret {
        /// Only `generic`.
        #[arg(value_parser = ["generic"])]
        kind: String,
        /// The rest.
        #[command(flatten)]
        args: CreateDataArgs,
    },
}

/// A ConfigMap's or Secret's name and data.
#[derive(Debug, Args)]
pub struct CreateDataArgs {
    /// The name.
    pub name: String,
    /// `KEY=VALUE`, repeatable.
    #[arg(long)]
    pub from_literal: Vec<String>,
    /// `[KEY=]PATH`, repeatable (the key defaults to the file's name).
    #[arg(long)]
    pub from_file: Vec<String>,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// `driftless autoscale`.
#[derive(Debug, Args)]
pub struct AutoscaleArgs {
    /// `deployment/web`.
    pub target: String,
    /// The fewest replicas.
    #[arg(long, default_value_t = 1)]
    pub min: i32,
    /// The most replicas.
    #[arg(long)]
    pub max: i32,
    /// The average CPU utilization to aim at, in percent of requests.
    #[arg(long)]
    pub cpu_percent: Option<i32>,
    /// The autoscaler's name (default: the workload's).
    #[arg(long)]
    pub name: Option<String>,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// `driftless delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `KIND/NAME`, or the kind (then the name).
    pub resource: Option<String>,
    /// The name, when the kind is given alone.
    pub name: Option<String>,
    /// Delete the objects these files declare.
    #[arg(short, long = "filename")]
    pub files: Vec<PathBuf>,
    /// The options.
    #[command(flatten)]
    pub options: WriteOptions,
}

/// Where the node keeps its state (images, containers).
#[derive(Debug, Args)]
pub struct DataDir {
    /// The data folder.
    #[arg(long, env = "DRIFTLESS_DATA_DIR", default_value = "/var/lib/driftless")]
    pub data_dir: PathBuf,
}

/// `driftless image ...`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import an OCI image layout (folder or tar) or a `docker save` archive.
    Import {
        /// The layout folder or archive.
        path: PathBuf,
        /// The repository for images the archive names only by tag
        /// (`busybox` for a layout tagged `1.35`).
        #[arg(long)]
        name: Option<String>,
        /// The data folder.
        #[command(flatten)]
        data: DataDir,
    },
    /// Pull an image from a registry (OCI distribution API).
    Pull {
        /// The image reference (`registry.example:5000/team/app:v1`).
        reference: String,
        /// A registry (`host:port`) to reach over plain HTTP; repeatable.
        #[arg(long = "insecure-registry")]
        insecure_registries: Vec<String>,
        /// The user for basic (or token) authentication.
        #[arg(long)]
        username: Option<String>,
        /// Read the password from standard input.
        #[arg(long, requires = "username")]
        password_stdin: bool,
        /// The data folder.
        #[command(flatten)]
        data: DataDir,
    },
    /// List the images in the store.
    Ls {
        /// The data folder.
        #[command(flatten)]
        data: DataDir,
    },
    /// Remove an image and whatever no other image uses.
    Rm {
        /// The image reference (`busybox:1.35`).
        reference: String,
        /// The data folder.
        #[command(flatten)]
        data: DataDir,
    },
}

/// `driftless init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to create (it may exist if empty).
    pub dir: PathBuf,
}

/// `driftless validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files or folders (searched recursively).
    #[arg(conflicts_with_all = ["repo", "rev"])]
    pub paths: Vec<PathBuf>,
    /// Read from a git repository instead of the file system.
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// The revision to read with --repo.
    #[arg(long, requires = "repo", default_value = "HEAD")]
    pub rev: String,
    /// The folder (or file) inside the repository to read with --repo.
    #[arg(long, requires = "repo", default_value = "")]
    pub path: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ValidateFormat::Text)]
    pub output: ValidateFormat,
    /// The data folder whose age identity decrypts SOPS files
    /// (`SOPS_AGE_KEY_FILE` and `SOPS_AGE_KEY` are read first, as sops does).
    #[arg(long, env = "DRIFTLESS_DATA_DIR", default_value = "/var/lib/driftless")]
    pub data_dir: PathBuf,
}

/// `driftless secrets`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Make the age identity the daemon decrypts with (DATA_DIR/age/keys.txt)
    /// and print its recipient (age1...), for `sops --age` or
    /// `.sops.yaml`.
    Keygen(SecretsKeygenArgs),
    /// Encrypt a Secret manifest in place in SOPS's format: `data` and
    /// `stringData` encrypted, `apiVersion`, `kind` and `metadata` left
    /// readable (as Flux requires); `sops --decrypt` reads it back.
    Encrypt(SecretsEncryptArgs),
}

/// `secrets keygen`.
#[derive(Debug, Args)]
pub struct SecretsKeygenArgs {
    /// The daemon's data folder.
    #[arg(long, env = "DRIFTLESS_DATA_DIR", default_value = "/var/lib/driftless")]
    pub data_dir: PathBuf,
}

/// `secrets encrypt`.
#[derive(Debug, Args)]
pub struct SecretsEncryptArgs {
    /// The Secret manifest to encrypt in place.
    pub file: PathBuf,
    /// Encrypt for this age recipient (repeatable; default: the data
    /// folder's own identity).
    #[arg(long, value_name = "RECIPIENT")]
    pub age: Vec<String>,
    /// The daemon's data folder (whose identity is the default recipient).
    #[arg(long, env = "DRIFTLESS_DATA_DIR", default_value = "/var/lib/driftless")]
    pub data_dir: PathBuf,
}

/// Output formats of `validate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// One line per finding, then a summary.
    Text,
    /// `{"diagnostics": [...], "summary": {...}}`.
    Json,
}

/// `driftless plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The revision running now (or the base of a pull request).
    #[arg(long, required_unless_present = "live", conflicts_with = "live")]
    pub from: Option<String>,
    /// Plan against what the daemon runs now (its live objects, drift
    /// included) instead of another revision.
    #[arg(long)]
    pub live: bool,
    /// The revision planned, and how.
    #[command(flatten)]
    pub target: PlanTarget,
    /// How to reach the daemon (with --live).
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `driftless diff`: `plan --live`, with kubectl diff's exit status.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The revision compared with what runs, and how.
    #[command(flatten)]
    pub target: PlanTarget,
    /// How to reach the daemon.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The revision a plan changes to, and how it is printed.
#[derive(Debug, Args)]
pub struct PlanTarget {
    /// The git repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The revision to change to.
    #[arg(long, default_value = "HEAD")]
    pub to: String,
    /// The folder (or file) inside the repository holding the manifests
    /// (against what runs: the daemon's, unless given).
    #[arg(long)]
    pub path: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    /// When to colour text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// Output formats of `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For a terminal, with field changes and unified diffs.
    Text,
    /// For a pull-request comment: a table and collapsible diffs.
    Markdown,
    /// For tools.
    Json,
}

/// Colour choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When standard output is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

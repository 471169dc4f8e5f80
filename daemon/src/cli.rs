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
    /// Manage the node's container images.
    #[command(subcommand)]
    Image(ImageCommand),
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
    /// The git repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The revision running now (or the base of a pull request).
    #[arg(long)]
    pub from: String,
    /// The revision to change to.
    #[arg(long, default_value = "HEAD")]
    pub to: String,
    /// The folder (or file) inside the repository holding the manifests.
    #[arg(long, default_value = "")]
    pub path: String,
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

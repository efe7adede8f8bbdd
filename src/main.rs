//! The `gslbd` command line: `run`, `check`, `explain`, `probe`, `dnssec` and `import-corefile`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// gslbd: a GSLB authoritative DNS server.
#[derive(Parser)]
#[command(name = "gslbd", version, about)]
struct Cli {
    /// Log output format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Log level or filter (e.g. `debug`, `gslbd=trace`); overrides RUST_LOG.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS from the configuration file.
    Run {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Validate the configuration file, print a summary and exit.
    Check {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Explain, as JSON, what a client at an address gets for a name and why (offline: the
    /// config and the state directory; members in their checks' initial state).
    Explain {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// The name asked.
        name: String,
        /// The type asked (default A).
        qtype: Option<String>,
        /// The address the query comes from.
        #[arg(long)]
        client: String,
        /// The EDNS Client Subnet the query carries, as ADDRESS/PREFIX.
        #[arg(long)]
        ecs: Option<String>,
    },
    /// Ask a running gslbd's admin API whether it is ready (or healthy): exit 0 on HTTP 200,
    /// 1 otherwise. For container health checks, where no curl is at hand.
    Probe {
        /// The URL, e.g. http://127.0.0.1:8053/ready.
        #[arg(default_value = "http://127.0.0.1:8053/ready")]
        url: String,
        /// Accept any TLS certificate (an admin API with a self-signed one).
        #[arg(long)]
        insecure: bool,
    },
    /// DNSSEC keys: make one, or print a zone's DS records for its parent.
    Dnssec {
        #[command(subcommand)]
        command: DnssecCommand,
    },
    /// Print a gslbd config for the elchi and zoneregistry server blocks of a CoreDNS
    /// Corefile; items left out are listed on stderr.
    ImportCorefile {
        /// The Corefile.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum DnssecCommand {
    /// Make a key for a zone, written as BIND's K<zone>+<alg>+<tag>.key and .private.
    Keygen {
        /// The zone.
        zone: String,
        /// ECDSAP256SHA256 (13) or ED25519 (15).
        #[arg(long, default_value = "ECDSAP256SHA256")]
        algorithm: String,
        /// A key-signing key (SEP flag; alone it signs everything, a combined key).
        #[arg(long)]
        ksk: bool,
        /// Folder to write the files in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Print the DS records of a signed zone's key-signing keys, for its parent.
    Ds {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// The zone.
        zone: String,
        /// SHA-384 digests too.
        #[arg(long)]
        sha384: bool,
    },
}

fn init_logging(format: LogFormat, level: Option<&str>) -> Result<(), String> {
    let filter = match level {
        Some(level) => EnvFilter::try_new(level).map_err(|e| format!("invalid --log-level {level:?}: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match gslbd::app::check(&config) {
            Ok(summary) => {
                print!("{summary}");
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        Command::Explain { config, name, qtype, client, ecs } => {
            let question = match gslbd::explain::Question::parse(&name, qtype.as_deref(), &client, ecs.as_deref()) {
                Ok(q) => q,
                Err(e) => {
                    eprintln!("gslbd explain: {e}");
                    return ExitCode::from(2);
                }
            };
            match gslbd::app::explain(&config, &question) {
                Ok(v) => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gslbd explain: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Dnssec { command } => {
            let result = match command {
                DnssecCommand::Keygen { zone, algorithm, ksk, dir } => {
                    gslbd::keytool::keygen(&zone, &algorithm, ksk, &dir).map(|stem| format!("{stem}\n"))
                }
                DnssecCommand::Ds { config, zone, sha384 } => gslbd::keytool::ds(&config, &zone, sha384),
            };
            match result {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gslbd dnssec: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Probe { url, insecure } => match gslbd::app::probe_url(&url, insecure) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gslbd probe: {e}");
                ExitCode::FAILURE
            }
        },
        Command::ImportCorefile { file } => {
            let text = match gslbd::config::file::read_text(&file, gslbd::config::file::CONFIG_MAX) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("gslbd: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match gslbd::corefile::import::import(&text) {
                Ok(imported) => {
                    print!("{}", imported.toml);
                    for w in &imported.warnings {
                        eprintln!("{}: {w}; left out (see the # invalid comment)", file.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}:{}: {}", file.display(), e.line, e.message);
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config } => {
            // Before any thread exists: this may start the program again, tuned.
            gslbd::allocator::tune();
            if let Err(e) = init_logging(cli.log_format, cli.log_level.as_deref()) {
                eprintln!("gslbd: {e}");
                return ExitCode::from(2);
            }
            if let Some(reason) = gslbd::allocator::not_tuned() {
                tracing::warn!(
                    reason,
                    "running with glibc's per-thread allocator caches; resident memory may grow more"
                );
            }
            match gslbd::app::run(&config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("gslbd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

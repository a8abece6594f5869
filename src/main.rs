//! `sluice`: the gateway binary. Thin: parses the command line, loads and validates the config,
//! sets up logging, and hands over to [`sluice::runtime::run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sluice::config::{Config, LogFormat};
use sluice::runtime::control::SetLogLevel;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A shard-per-core Kafka gateway.
#[derive(Parser, Debug)]
#[command(name = "sluice", version, about)]
struct Cli {
    /// Path of the TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a configuration file and print every error with its dotted path.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { file }) => match Config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok ({} shard(s), bootstrap {}, {} upstream bootstrap server(s))",
                    file.display(),
                    c.shards,
                    c.bootstrap_bind(),
                    c.bootstrap_servers.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        None => {
            let Some(path) = cli.config else {
                eprintln!("error: --config FILE is required (or use `sluice check-config FILE`)");
                return ExitCode::from(2);
            };
            let config = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let set_log_level = init_logging(&config);
            match sluice::runtime::run(config, path, set_log_level) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "sluice failed");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Installs the global subscriber (human or JSON, to stderr) with a filter that the admin API and
/// reloads can change at runtime; returns the function that changes it.
fn init_logging(config: &Config) -> SetLogLevel {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    macro_rules! install {
        ($b:expr) => {{
            let b = $b.with_filter_reloading();
            let handle = b.reload_handle();
            b.init();
            Arc::new(move |directive: &str| {
                let f = EnvFilter::try_new(directive)
                    .map_err(|e| format!("{directive:?} is not a tracing filter directive: {e}"))?;
                handle.reload(f).map_err(|e| e.to_string())
            }) as SetLogLevel
        }};
    }
    match config.log_format {
        LogFormat::Json => install!(builder.json()),
        LogFormat::Human => install!(builder),
    }
}

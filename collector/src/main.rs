//! `vakt-collector`: stores samples from Vakt agents, keeps check state, opens and resolves
//! incidents, serves the API and Prometheus metrics. The command line is in `cli.rs`.

mod cli;

use clap::Parser;
use std::process::ExitCode;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { file } => match cli::check_config(&file) {
            Ok(()) => Ok(()),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        Command::HashToken { stdin } => cli::hash_token_command(stdin),
        Command::Backup { config, file } => cli::backup_command(&config, &file),
        Command::Store(command) => cli::store_command(command),
        Command::NotifyTest { config, receiver } => cli::notify_test(&config, &receiver),
        Command::Maintenance(args) => cli::plan_maintenance(args),
        Command::StatusPost(cmd) => cli::status_post_command(cmd),
        Command::Report { config, service, customer, vendor, period, format, timezone } => {
            cli::report_command(&config, service, customer, vendor, &period, &format, timezone.as_deref())
        }
        Command::Run { config } => {
            vakt_agent::init_logging();
            cli::run(config)
        }
        Command::Quickstart { listen, data_dir } => {
            vakt_agent::init_logging();
            cli::with_runtime(|shutdown| vakt_collector::quickstart::run(listen, data_dir, shutdown))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vakt-collector: {e:#}");
            ExitCode::FAILURE
        }
    }
}

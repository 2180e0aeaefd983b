//! `threadline-collector`: parses the command line, starts the server, prints the URL
//! on stdout (one line, for scripts), and stops on Ctrl-C or SIGTERM.
//! `threadline-collector issue-token --secret S --user U` prints a user token instead.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use threadline_collector::config::Command;
use threadline_collector::{start, token, Cli, FaultSettings};

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Some(Command::IssueToken { secret, user, ttl_seconds }) = cli.command.take() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return match token::issue(secret.as_bytes(), &user, now.saturating_add(ttl_seconds)) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("threadline-collector: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let config = cli.into_config();
    let faults_configured = config.faults != FaultSettings::default();
    let server = match start(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("threadline-collector: {}", error_chain(&error));
            return ExitCode::FAILURE;
        }
    };

    let mut stdout = std::io::stdout().lock();
    let announced =
        writeln!(stdout, "threadline-collector listening on {}", server.url()).and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(error) = announced {
        eprintln!("threadline-collector: cannot write to stdout: {error}");
    }
    if faults_configured {
        eprintln!(
            "threadline-collector: injecting faults, seed {} (replay with --seed)",
            server.fault_seed()
        );
    }

    shutdown_signal().await;
    match server.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("threadline-collector: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// Waits for Ctrl-C, or SIGTERM on Unix (what test harnesses send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// `error: cause: cause`, so the root cause (e.g. the OS error) is visible.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

//! The accept loop: serves the axum router connection by connection with hyper.
//!
//! `axum::serve` hides the connections, but the drop fault has to close one socket
//! without writing a response. So each connection runs in its own task that owns the
//! hyper connection future, and a [`ConnectionKiller`] placed in every request's
//! extensions lets a handler ask that task to drop the future: the socket closes with
//! no bytes of a response written. Everything else (keep-alive, pipelining, graceful
//! shutdown) is hyper's normal HTTP/1.1 behaviour.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower_service::Service as _;

/// Time allowed for a client to send its request headers (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Time open connections get to finish after shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Why the server task failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The server task panicked.
    #[error("server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Lets a request handler close its own connection without any response.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionKiller {
    notify: Arc<Notify>,
}

impl ConnectionKiller {
    /// Asks the connection task to drop the connection. The handler should then stay
    /// pending; its future is dropped together with the connection.
    pub(crate) fn kill(&self) {
        // `notify_one` keeps a permit if the connection task is not waiting right now.
        self.notify.notify_one();
    }

    async fn killed(&self) {
        self.notify.notified().await;
    }
}

/// A server started by [`crate::start`]. Dropping it also stops the server, without
/// waiting; prefer [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    fault_seed: u64,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// The bound address (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Seed of the fault RNG; pass it to `--seed` to replay the same faults.
    pub fn fault_seed(&self) -> u64 {
        self.fault_seed
    }

    /// `http://<addr>`, the base URL of the collector.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets open requests finish (up to a grace period), and returns
    /// when every connection is closed.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        // Fails only if the server task already ended, which is what we want anyway.
        let _ = self.shutdown.send(true);
        self.task.await?;
        Ok(())
    }
}

/// Starts the accept loop on `listener` (bound to `addr`) in a new task.
pub(crate) fn spawn(
    listener: TcpListener,
    addr: SocketAddr,
    fault_seed: u64,
    router: Router,
) -> RunningServer {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, router, shutdown_rx));
    RunningServer { addr, fault_seed, shutdown, task }
}

async fn accept_loop(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, router.clone(), shutdown.clone()));
                }
                Err(error) => {
                    eprintln!("threadline-collector: accept failed: {error}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            // A send of `true` or a dropped sender both mean: stop.
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection(stream: TcpStream, router: Router, mut shutdown: watch::Receiver<bool>) {
    // Batches are small request/response pairs; don't let Nagle delay the answer.
    let _ = stream.set_nodelay(true);
    let killer = ConnectionKiller::default();
    let request_killer = killer.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(request_killer.clone());
        let mut router = router.clone();
        async move {
            let response = router.call(request).await;
            Ok::<_, Infallible>(match response {
                Ok(response) => response,
                Err(never) => match never {},
            })
        }
    });

    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let mut killed = pin!(killer.killed());
    let mut shutting_down = false;
    loop {
        tokio::select! {
            // Closed by the client, finished after graceful shutdown, or an I/O error;
            // there is nobody to report a connection error to.
            _ = connection.as_mut() => break,
            // Returning drops the connection future and with it the socket.
            () = killed.as_mut() => break,
            _ = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

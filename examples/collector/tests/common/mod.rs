//! Helpers shared by the integration tests: an in-process collector on port 0 with a
//! throw-away database, and a plain HTTP/1.1 client.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use threadline_collector::{Config, RunningServer};

pub type TestError = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult<T = ()> = Result<T, TestError>;

pub const WRITE_KEY: &str = "demo-write-key";

/// `Basic base64("<key>:")`.
pub fn basic_auth(key: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
}

/// A fresh database path under the system temp dir, unique per test.
pub fn temp_db_path() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!(
        "threadline-collector-test-{}-{}-{nanos}.sqlite",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Removes a database and its WAL files.
pub fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// A test configuration: port 0, a fresh temporary database, seed 1.
pub fn test_config() -> Config {
    Config { port: 0, db_path: temp_db_path(), fresh: true, seed: Some(1), ..Config::default() }
}

/// A running collector plus a client for it; stops the server and deletes the
/// database when dropped.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub client: Client,
    pub db_path: PathBuf,
}

impl TestServer {
    pub async fn start() -> TestResult<Self> {
        Self::with_config(test_config()).await
    }

    pub async fn with_config(config: Config) -> TestResult<Self> {
        let db_path = config.db_path.clone();
        let server = threadline_collector::start(config).await?;
        let client = Client::new(&server.url());
        Ok(Self { server: Some(server), client, db_path })
    }

    pub fn addr(&self) -> TestResult<SocketAddr> {
        Ok(self.server.as_ref().ok_or("server stopped")?.addr())
    }

    /// Stops the server gracefully, keeping the database.
    pub async fn stop(&mut self) -> TestResult {
        if let Some(server) = self.server.take() {
            server.shutdown().await?;
        }
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Dropping the RunningServer stops it; the files can go once it is gone.
        drop(self.server.take());
        remove_db(&self.db_path);
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> TestResult<Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A keep-alive HTTP/1.1 client bound to one base URL.
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self { inner: HyperClient::builder(TokioExecutor::new()).build_http(), base: base.to_owned() }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> TestResult<Reply> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .body(Full::new(body.into()))?;
        for (name, value) in headers {
            request
                .headers_mut()
                .append(HeaderName::from_bytes(name.as_bytes())?, HeaderValue::from_str(value)?);
        }
        let response = tokio::time::timeout(Duration::from_secs(20), self.inner.request(request))
            .await
            .map_err(|_| "request timed out")??;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }

    pub async fn get(&self, path: &str) -> TestResult<Reply> {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    /// GET returning the JSON body, failing on a non-200 status.
    pub async fn get_json(&self, path: &str) -> TestResult<Value> {
        let reply = self.get(path).await?;
        if reply.status != StatusCode::OK {
            return Err(format!("GET {path}: {} {}", reply.status, reply.text()).into());
        }
        reply.json()
    }

    /// POST a JSON body with the given headers.
    pub async fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> TestResult<Reply> {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send(Method::POST, path, &all, serde_json::to_vec(body)?).await
    }

    /// POST /v1/batch with the demo write key as basic auth.
    pub async fn post_batch(&self, body: &Value) -> TestResult<Reply> {
        let auth = basic_auth(WRITE_KEY);
        self.post_json("/v1/batch", &[(AUTHORIZATION.as_str(), &auth)], body).await
    }

    /// POST /admin/faults with a patch; fails on a non-200 status.
    pub async fn set_faults(&self, patch: &Value) -> TestResult<Value> {
        let reply = self.post_json("/admin/faults", &[], patch).await?;
        if reply.status != StatusCode::OK {
            return Err(format!("POST /admin/faults: {} {}", reply.status, reply.text()).into());
        }
        reply.json()
    }

    pub async fn stats(&self) -> TestResult<Value> {
        self.get_json("/stats").await
    }

    pub async fn events(&self, query: &str) -> TestResult<Vec<Value>> {
        match self.get_json(&format!("/events{query}")).await? {
            Value::Array(events) => Ok(events),
            other => Err(format!("/events returned {other}").into()),
        }
    }
}

/// `value.key`, or null (indexing a `Value` is linted in this workspace).
pub fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(&Value::Null)
}

/// The value at a JSON pointer such as `/properties/sku`, or null.
pub fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

/// Sets `object.key = new` on a JSON object.
pub fn set(object: &mut Value, key: &str, new: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), new);
    }
}

/// A track message.
pub fn track(message_id: &str, event: &str, anonymous_id: &str) -> Value {
    serde_json::json!({
        "type": "track",
        "event": event,
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "timestamp": "2024-05-01T12:00:00.000Z",
        "properties": { "sku": "slacks-42", "price": 89.5 },
        "context": { "library": { "name": "threadline-test", "version": "0" } }
    })
}

/// `{"batch":[...],"sentAt":...}`.
pub fn batch(messages: Vec<Value>) -> Value {
    serde_json::json!({ "batch": messages, "sentAt": "2024-05-01T12:00:01.000Z" })
}

/// A raw HTTP/1.1 POST of `body` to /v1/batch with the demo key.
pub fn raw_batch_request(body: &Value) -> TestResult<Vec<u8>> {
    let body = serde_json::to_vec(body)?;
    let mut request = format!(
        "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        basic_auth(WRITE_KEY),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    Ok(request)
}

/// What came back on a raw socket.
#[derive(Debug, PartialEq, Eq)]
pub enum RawOutcome {
    /// The server closed the connection (FIN or RST) without sending a byte.
    ClosedWithoutResponse,
    /// Bytes arrived before the connection closed.
    Response(Vec<u8>),
}

/// Sends `request` on a new TCP connection and reads until the server closes it.
/// Times out (an error) if the server neither answers nor closes within 10 s.
pub async fn raw_exchange(addr: SocketAddr, request: Vec<u8>) -> TestResult<RawOutcome> {
    tokio::task::spawn_blocking(move || -> TestResult<RawOutcome> {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        // The server may close before reading everything; that is not a test failure.
        let _ = stream.write_all(&request);
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(chunk.get(..n).ok_or("bad read")?),
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(error) => return Err(error.into()),
            }
        }
        Ok(if received.is_empty() {
            RawOutcome::ClosedWithoutResponse
        } else {
            RawOutcome::Response(received)
        })
    })
    .await?
}

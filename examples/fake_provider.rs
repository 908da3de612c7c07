//! A local stand-in for two providers' batch endpoints, for benchmarks. Postmark:
//! `POST /email/batch` (a JSON array of messages, as documented at
//! <https://postmarkapp.com/developer/api/email-api#send-batch-emails>), each message answered
//! with `ErrorCode: 0`. Brevo: `POST /v3/smtp/email` (an object with `htmlContent` and up to
//! 1000 `messageVersions`, <https://developers.brevo.com/reference/sendtransacemail>),
//! answered 201 with a `messageIds` entry per version. It counts requests, messages and
//! bytes; `GET /stats` returns the counts as JSON.
//!
//!   cargo run --release --example fake_provider -- 127.0.0.1:0
//!
//! It prints `READY http://ADDRESS` once it listens. Loopback only: it checks no credentials.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
}

async fn batch(State(counts): State<Arc<Counts>>, body: Bytes) -> impl IntoResponse {
    let messages: Vec<serde::de::IgnoredAny> = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            let error = serde_json::json!({"ErrorCode": 402, "Message": e.to_string()});
            return (StatusCode::UNPROCESSABLE_ENTITY, error.to_string());
        }
    };
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts
        .messages
        .fetch_add(messages.len() as u64, Ordering::Relaxed);
    counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    let results: Vec<serde_json::Value> = (0..messages.len())
        .map(|i| serde_json::json!({"ErrorCode": 0, "Message": "OK", "MessageID": format!("fake-{i}")}))
        .collect();
    (
        StatusCode::OK,
        serde_json::Value::Array(results).to_string(),
    )
}

/// What the fake reads of a Brevo request: the shared HTML and the versions.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Brevo {
    html_content: String,
    message_versions: Vec<serde::de::IgnoredAny>,
}

async fn brevo(State(counts): State<Arc<Counts>>, body: Bytes) -> impl IntoResponse {
    let refused = |message: String| {
        let error = serde_json::json!({"code": "invalid_parameter", "message": message});
        (StatusCode::BAD_REQUEST, error.to_string())
    };
    let request: Brevo = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return refused(e.to_string()),
    };
    let n = request.message_versions.len();
    if request.html_content.is_empty() || n == 0 || n > 1000 {
        return refused(format!(
            "htmlContent and 1 to 1000 messageVersions, not {n}"
        ));
    }
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.messages.fetch_add(n as u64, Ordering::Relaxed);
    counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    let ids: Vec<String> = (0..n)
        .map(|i| format!("<fake-{i}@smtp-relay.mailin.fr>"))
        .collect();
    (
        StatusCode::CREATED,
        serde_json::json!({"messageIds": ids}).to_string(),
    )
}

async fn stats(State(counts): State<Arc<Counts>>) -> String {
    serde_json::json!({
        "requests": counts.requests.load(Ordering::Relaxed),
        "messages": counts.messages.load(Ordering::Relaxed),
        "bytes": counts.bytes.load(Ordering::Relaxed),
    })
    .to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let counts = Arc::new(Counts::default());
    let app = Router::new()
        .route("/email/batch", post(batch))
        .route("/v3/smtp/email", post(brevo))
        .route("/stats", get(stats))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(counts);
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("READY http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}

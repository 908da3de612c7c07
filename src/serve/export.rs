//! The export: the suppression store, event by event after a cursor, for senders elsewhere
//! to pull (`[suppressions] remote` in their `bulletin.toml`, [`crate::suppressions::remote`]).
//!
//! `GET /suppressions/export?since=N&limit=M` with `Authorization: Bearer <token>` (the
//! value of the variable `[serve] export_token_env` names) answers a
//! [`crate::suppressions::remote::Page`] as JSON. The token is compared in constant time; a
//! request without it, or with another, is answered 401 and logged without the token. Only
//! mounted when the token is set.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::routes::Shared;
use crate::suppressions::remote::{PAGE, Page};
use crate::values::Secret;

/// Where the export is answered.
pub const PATH: &str = "/suppressions/export";

/// `?since=N&limit=M`: the cursor (0 by default) and the page size (at most [`PAGE`]).
fn cursor(query: Option<&str>) -> Result<(i64, usize), String> {
    let (mut since, mut limit) = (0, PAGE);
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "since" => since = value.parse().map_err(|_| format!("since={value}"))?,
            "limit" => limit = value.parse().map_err(|_| format!("limit={value}"))?,
            _ => {}
        }
    }
    Ok((since.max(0), limit.clamp(1, PAGE)))
}

/// Answers one page of the export to a request that carries the token.
pub async fn export(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(token) = shared.export_token() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !authorised(&headers, token) {
        shared.log("export refused: no token, or not the export's token");
        let mut answer = StatusCode::UNAUTHORIZED.into_response();
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"bulletin export\""),
        );
        return answer;
    }
    let (after, limit) = match cursor(query.as_deref()) {
        Ok(cursor) => cursor,
        Err(bad) => {
            let why = format!("{bad} is not a number: ask ?since=N&limit=M");
            return (StatusCode::BAD_REQUEST, why).into_response();
        }
    };
    let read = shared
        .with_store(move |store| store.since(after, limit + 1))
        .await;
    match read {
        Some(Ok(mut events)) => {
            let more = events.len() > limit;
            events.truncate(limit);
            let next = events.last().map_or(after, |e| e.id);
            shared.log(&format!("export since {after}: {} events", events.len()));
            let body = serde_json::to_vec(&Page { events, next, more }).unwrap_or_default();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Some(Err(e)) => {
            shared.log(&format!("export failed: {}", e.reason));
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// True when the request's bearer token is `token`; digests are compared, in constant time,
/// so that neither the token's bytes nor its length show in the answer's timing.
fn authorised(headers: &HeaderMap, token: &Secret) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (given, want) = (
        Sha256::digest(given.trim().as_bytes()),
        Sha256::digest(token.expose().as_bytes()),
    );
    !token.expose().is_empty() && bool::from(given.as_slice().ct_eq(want.as_slice()))
}

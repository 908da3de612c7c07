//! Brevo (formerly Sendinblue): the transactional email endpoint with `messageVersions`, up
//! to 1000 versions a request. The HTML goes once a request, as a template in Brevo's
//! template language with `{{ params.bltnN }}` in its holes (`html_template`); each reader
//! is one version with their address, subject, text, List-Unsubscribe header and `params`
//! (their values for the HTML's holes, within Brevo's limits on params: [`PARAMS_LIMIT`]).
//! The sender, the tag and the headers every reader shares are given once.
//!
//! The text goes filled in each version: Brevo documents params in the HTML ("Define
//! placeholders in your HTML using {{params.variableName}}", the batch guide), not in
//! `textContent`. django-anymail's documentation says Brevo takes no inline template
//! without a `templateId`; Brevo's own guide (custom HTML with `params` in each version) is
//! followed here.
//!
//! API reference: <https://developers.brevo.com/reference/sendtransacemail>; batches:
//! <https://developers.brevo.com/docs/batch-send-transactional-emails>; template language
//! (`autoescape`, `verbatim`):
//! <https://help.brevo.com/hc/en-us/articles/360018252080>; idempotency:
//! <https://developers.brevo.com/docs/heterogenous-versions-batch-emails>; rate-limit
//! headers: <https://developers.brevo.com/docs/limit-headers>.
//!
//! A request sent again with an `idempotencyKey` Brevo has seen in the last 30 minutes is
//! not processed again and is answered `400 duplicate_parameter` (the idempotency guide's
//! "Time-to-live and error handling"): the first request was accepted, so its readers are
//! recorded as sent, never as refused. A request refused whole (`400 invalid_parameter`)
//! is pinned on the readers its message quotes, else the send loop splits it to find them.
//!
//! Not documented by Brevo, done as django-anymail does: `headers` inside a version (the
//! reader's own List-Unsubscribe), and `messageIds` in the order of the versions.

use std::fmt::Write as _;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::body::Item;
use super::template::{Document, Fill, Piece, cut};
use super::{
    Answer, Auth, Body, Common, Context, Headers, Json, Provider, ProviderError, Request,
    RequestError, SettingsError, header_object,
};
use crate::message::{Filled, Form, Letterhead, Outgoing};
use crate::transport::{Accepted, Batch, Failure, Kind};
use crate::values::Secret;

/// `transport = "brevo"`.
pub const TRANSPORT: &str = "brevo";

/// A Brevo profile's settings, as `bulletin.toml` writes them (the shared ones only).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: Common,
}

impl Settings {
    /// Whether the settings go together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.common.validate(TRANSPORT)
    }
}

/// Brevo's own address.
pub const ENDPOINT: &str = "https://api.brevo.com";

/// "Send up to 1000 email messages in one API call" (the batch guide); one recipient per
/// version keeps us under the reference's 2000 recipients per request.
pub const BATCH_LIMIT: usize = 1000;

/// "The size of individual params in all the messageVersions shall not exceed 100 KB limit
/// and that of cumulative params shall not exceed 1000 KB" (the reference, `messageVersions`).
/// Counted as the JSON Brevo receives, in thousands of bytes: the reference does not say how
/// it counts, and this errs on the safe side.
pub const PARAMS_LIMIT: usize = 100_000;
pub const PARAMS_TOTAL_LIMIT: usize = 1_000_000;

/// The longest recipient name a version takes ("name max 70 chars"); a longer one would get
/// the whole request refused.
const NAME_LIMIT: usize = 70;

/// The param that holds a literal `{` (see [`html_template`]).
const BRACE: &str = "bltn_brace";

/// The param of hole `n`: `{{ params.bltn0 }}` in the HTML.
fn param(n: usize) -> String {
    format!("bltn{n}")
}

/// The HTML as one Brevo template: each hole `{{ params.bltnN }}`, filled by each
/// version's `params`, and whether it needs the `bltn_brace` param.
///
/// Brevo's template language (Django-like: `{{ … }}` prints, `{% … %}` runs a tag) escapes
/// the HTML in every value by default; our values are escaped already, for where each hole
/// stands (HTML text, a URL in an attribute), so the whole document is in `{% autoescape off
/// %}`, which Brevo documents for that ("Disable auto-escaping and display double curly
/// brackets in your emails"). Brevo reads `{{`, `{%` (and, Django-like, `{#`) anywhere in
/// the HTML as its own: a literal `{` that would start one (before `{`, `%`, `#`, a hole or
/// the closing tag) is printed by the param `bltn_brace`, whose value is `{`. The HTML each
/// reader gets is then the HTML bulletin fills for them, byte for byte.
fn html_template(pieces: &[Piece]) -> (String, bool) {
    let mut out = String::from("{% autoescape off %}");
    let mut brace = false;
    for piece in pieces {
        match piece {
            Piece::Hole(n) => {
                let _ = write!(out, "{{{{ params.{} }}}}", param(*n));
            }
            Piece::Text(text) => {
                let mut chars = text.chars().peekable();
                while let Some(c) = chars.next() {
                    // After a text comes a hole or the closing tag: both start with `{`.
                    let next = chars.peek().copied().unwrap_or('{');
                    if c == '{' && matches!(next, '{' | '%' | '#') {
                        let _ = write!(out, "{{{{ params.{BRACE} }}}}");
                        brace = true;
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }
    out.push_str("{% endautoescape %}");
    (out, brace)
}

pub struct Brevo {
    endpoint: String,
    key: Secret,
    key_env: String,
    letterhead: Letterhead,
    limit: usize,
    /// The HTML as a template, the same in every request ([`html_template`]).
    html: String,
    /// The holes the HTML has, each once: the params each version carries.
    html_holes: Vec<usize>,
    /// Whether the HTML prints a literal `{` from the param `bltn_brace`.
    brace: bool,
    /// The text, which each version carries filled (Brevo documents params in the HTML
    /// only).
    text: Document,
    /// How many values each reader has.
    holes: usize,
}

/// What becomes of each message of a batch in its request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// A version of the request.
    In,
    /// Left out: its params alone are more than Brevo takes (this many bytes).
    TooBig(usize),
    /// Left out: the request's params would be more than Brevo takes; it goes in the next.
    Later,
}

impl Brevo {
    pub fn new(settings: &Settings, context: &Context) -> Result<Brevo, ProviderError> {
        let common = &settings.common;
        let [_, html, text] = cut(context.template)?;
        let (template, brace) = html_template(&html.pieces);
        let mut html_holes: Vec<usize> = html
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Hole(n) => Some(*n),
                Piece::Text(_) => None,
            })
            .collect();
        html_holes.sort_unstable();
        html_holes.dedup();
        Ok(Brevo {
            endpoint: common.endpoint(ENDPOINT),
            key: context.secret(&common.api_key_env)?,
            key_env: common.api_key_env.clone(),
            letterhead: context.letterhead.clone(),
            limit: common.batch_limit(BATCH_LIMIT),
            html: template,
            html_holes,
            brace,
            text,
            holes: html.holes,
        })
    }

    /// The reader's values, checked against the template's holes.
    fn values<'a>(&self, m: &'a Outgoing) -> Result<&'a Filled, RequestError> {
        super::template::values(m, self.holes)
    }

    fn params<'a>(&'a self, filled: &'a Filled) -> Params<'a> {
        Params {
            holes: &self.html_holes,
            values: &filled.values,
            brace: self.brace,
        }
    }

    /// Where each message of the batch goes: in this request, left out for good (its params
    /// too big), or left for the next request (this one's params are full). The same for the
    /// same batch, so that the answer is read as the request was made.
    fn places(&self, batch: &Batch) -> Result<Vec<Place>, RequestError> {
        let mut total = 0;
        batch
            .messages
            .iter()
            .map(|m| {
                let size = serde_json::to_vec(&self.params(self.values(m)?))?.len();
                Ok(if size > PARAMS_LIMIT {
                    Place::TooBig(size)
                } else if total + size > PARAMS_TOTAL_LIMIT {
                    Place::Later
                } else {
                    total += size;
                    Place::In
                })
            })
            .collect()
    }

    /// The request body: what every reader shares once, the HTML template among it, and a
    /// version for each reader placed in it.
    fn body<'a>(&'a self, batch: &'a Batch, places: &[Place]) -> Result<Json<'a>, RequestError> {
        let mut versions: Vec<Box<dyn Item + 'a>> = Vec::new();
        let mut first = None;
        for (m, place) in batch.messages.iter().zip(places) {
            if *place != Place::In {
                continue;
            }
            let filled = self.values(m)?;
            first.get_or_insert(filled);
            versions.push(Box::new(self.version(m, filled)));
        }
        let Some(first) = first else {
            return Err(
                match places.iter().find(|p| matches!(p, Place::TooBig(_))) {
                    Some(Place::TooBig(size)) => too_big(*size),
                    _ => RequestError::Empty,
                },
            );
        };
        let mut shared = json!({
            "sender": address(&self.letterhead.from),
            // Brevo customises the contents per version only when they are also given at the
            // top: the first reader's subject and text stand in, every version has its own.
            "subject": first.subject,
            "htmlContent": self.html,
            "textContent": self.text.fill(&first.values).to_string(),
            "tags": [self.letterhead.tag],
            "headers": self.shared_headers(batch),
        });
        if let Some(reply_to) = &self.letterhead.reply_to {
            shared["replyTo"] = address(reply_to);
        }
        Ok(Json::object(&shared, "messageVersions", versions)?)
    }

    /// One reader's version: their address, subject, text, the values of the HTML's holes
    /// and their List-Unsubscribe.
    fn version<'a>(&'a self, m: &'a Outgoing, filled: &'a Filled) -> Version<'a> {
        Version {
            to: [To {
                email: m.envelope.to.to_string(),
                name: filled
                    .to_name
                    .as_deref()
                    .map(|n| n.chars().take(NAME_LIMIT).collect()),
            }],
            subject: &filled.subject,
            text_content: self.text.fill(&filled.values),
            params: self.params(filled),
            // `headers` in a version is not in Brevo's reference nor its SDKs; django-anymail
            // sends it (merge_headers) and Brevo accepts it. It is the only way to give each
            // reader their own List-Unsubscribe in one request.
            headers: Headers::of(m, |name| name == "List-Unsubscribe"),
        }
    }

    /// The idempotency key, and the headers that are the same for every reader (List-Id,
    /// List-Unsubscribe-Post).
    fn shared_headers(&self, batch: &Batch) -> Value {
        let mut headers = batch
            .messages
            .first()
            .map(|m| header_object(m, |name| name != "List-Unsubscribe"))
            .unwrap_or_default();
        headers.insert("idempotencyKey".into(), idempotency_key(batch).into());
        Value::Object(headers)
    }
}

fn too_big(size: usize) -> RequestError {
    RequestError::TooBig {
        provider: "Brevo",
        size,
        limit: PARAMS_LIMIT,
    }
}

/// A version of the request, as Brevo's reference names its fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Version<'a> {
    to: [To; 1],
    subject: &'a str,
    text_content: Fill<'a>,
    params: Params<'a>,
    headers: Headers<'a>,
}

/// `{"email", "name"}`, the name left out when there is none.
#[derive(Serialize)]
struct To {
    email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// A version's params: the value of each hole of the HTML (`bltnN`), and `bltn_brace` when
/// the HTML prints a literal `{` with it.
struct Params<'a> {
    holes: &'a [usize],
    values: &'a [String],
    brace: bool,
}

impl Serialize for Params<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for n in self.holes {
            let value = self.values.get(*n).map_or("", String::as_str);
            map.serialize_entry(&param(*n), value)?;
        }
        if self.brace {
            map.serialize_entry(BRACE, "{")?;
        }
        map.end()
    }
}

/// The code of a Brevo error answer: `invalid_parameter`, `duplicate_parameter`…
fn code(answer: &Answer) -> Option<String> {
    answer
        .json()?
        .get("code")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Brevo's answer to a request whose `idempotencyKey` it has already processed.
const DUPLICATE: &str = "duplicate_parameter";

/// `{"email", "name"}`, the name left out when there is none.
fn address(mailbox: &lettre::message::Mailbox) -> Value {
    let mut a = json!({"email": mailbox.email.to_string()});
    if let Some(name) = mailbox.name.as_deref().filter(|n| !n.is_empty()) {
        a["name"] = name.into();
    }
    a
}

/// Brevo's `idempotencyKey` is a UUID: one made from the batch's key and its messages' IDs,
/// so that it is the same for the same request across retries and runs, and differs for a
/// test send to the same readers (whose Message-IDs say so).
fn idempotency_key(batch: &Batch) -> String {
    let mut h = Sha256::new();
    h.update(batch.key.as_bytes());
    for m in &batch.messages {
        h.update([0]);
        h.update(m.message_id.as_bytes());
    }
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    // Shaped as a version 4 UUID, in case Brevo checks.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl Provider for Brevo {
    fn name(&self) -> &'static str {
        "Brevo"
    }

    fn batch_limit(&self) -> usize {
        self.limit
    }

    fn form(&self) -> Form {
        Form::Values
    }

    fn request<'a>(&'a self, batch: &'a Batch) -> Result<Request<'a>, RequestError> {
        let places = self.places(batch)?;
        Ok(Request {
            url: format!("{}/v3/smtp/email", self.endpoint),
            headers: Vec::new(),
            auth: Auth::Header {
                name: "api-key",
                value: self.key.clone(),
            },
            body: Body::Json(self.body(batch, &places)?),
        })
    }

    /// Brevo takes or refuses a request whole: a 201 holds `messageIds`, one per version
    /// (in the versions' order, as django-anymail reads them; not documented). Without as
    /// many IDs as versions, each is recorded with the answer as a whole. Readers left out
    /// of the request fail for good (their params are too big) or go in the next request.
    fn outcomes(&self, batch: &Batch, answer: &Answer) -> Option<Vec<Result<Accepted, Failure>>> {
        let places = self.places(batch).ok()?;
        let sent = places.iter().filter(|p| **p == Place::In).count();
        let replies: Vec<String> = if answer.status == 400
            && code(answer).as_deref() == Some(DUPLICATE)
        {
            // Every request carries an idempotencyKey, and no request names a reader
            // twice: the duplicate is the key, whose first request Brevo accepted.
            vec![
                format!(
                    "accepted by Brevo in an earlier request with the same idempotencyKey {} (Brevo answered {DUPLICATE}: it did not send it again)",
                    idempotency_key(batch)
                );
                sent
            ]
        } else if (200..300).contains(&answer.status) {
            let json = answer.json().unwrap_or(Value::Null);
            let ids: Vec<&str> = json
                .get("messageIds")
                .and_then(Value::as_array)
                .map(|ids| ids.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if ids.len() == sent {
                ids.iter()
                    .map(|id| format!("accepted by Brevo, messageId {id}"))
                    .collect()
            } else {
                let reply = match json.get("messageId").and_then(Value::as_str) {
                    Some(id) => format!("accepted by Brevo, messageId {id}"),
                    None => format!(
                        "accepted by Brevo (HTTP {}, {} message IDs for {sent} readers)",
                        answer.status,
                        ids.len(),
                    ),
                };
                vec![reply; sent]
            }
        } else {
            return None;
        };
        let mut replies = replies.into_iter();
        Some(
            places
                .iter()
                .map(|place| match place {
                    Place::In => Ok(Accepted {
                        reply: replies.next().unwrap_or_default(),
                    }),
                    Place::TooBig(size) => Err(Failure {
                        kind: Kind::Permanent,
                        reply: too_big(*size).to_string(),
                    }),
                    Place::Later => Err(Failure {
                        kind: Kind::Bystander,
                        reply: format!(
                            "not sent yet: Brevo takes at most {PARAMS_TOTAL_LIMIT} bytes of params a request, and this reader's go in the next"
                        ),
                    }),
                })
                .collect(),
        )
    }

    /// `Retry-After` if there is one, else `x-sib-ratelimit-reset`: the seconds until the
    /// limit resets (not a date).
    fn retry_after(&self, answer: &Answer) -> Option<Duration> {
        super::retry_after_header(&answer.headers).or_else(|| {
            let seconds: f64 = answer
                .header("x-sib-ratelimit-reset")?
                .trim()
                .parse()
                .ok()?;
            (seconds.is_finite() && seconds >= 0.0)
                .then(|| Duration::from_secs_f64(seconds.min(3600.0)))
        })
    }

    /// Brevo's errors are `{"code": "invalid_parameter", "message": "email is not valid in to"}`.
    fn error_message(&self, answer: &Answer) -> String {
        let message = super::error_message(&answer.body);
        match code(answer) {
            Some(code) => format!("{code}: {message}"),
            None => message,
        }
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn credentials(&self) -> String {
        format!("the API key (v3, not an SMTP key) in {}", self.key_env)
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn batch(key: &str, ids: &[&str]) -> Batch {
        Batch {
            key: key.into(),
            messages: ids
                .iter()
                .map(|id| Outgoing {
                    envelope: crate::message::Envelope {
                        from: "news@example.org".parse().unwrap(),
                        to: "ann@example.org".parse().unwrap(),
                    },
                    message_id: id.to_string(),
                    payload: crate::message::Payload::Mime(Vec::new().into()),
                })
                .collect(),
        }
    }

    #[test]
    fn the_idempotency_key_is_a_uuid_the_same_for_the_same_request() {
        let k = idempotency_key(&batch("k1", &["<a@x>", "<b@x>"]));
        assert_eq!(k.len(), 36);
        assert_eq!(k.as_bytes()[14], b'4', "{k}");
        assert_eq!(k, idempotency_key(&batch("k1", &["<a@x>", "<b@x>"])));
        assert_ne!(k, idempotency_key(&batch("k1", &["<a.test@x>", "<b@x>"])));
        assert_ne!(k, idempotency_key(&batch("k2", &["<a@x>", "<b@x>"])));
    }

    #[test]
    fn the_html_is_one_template_whose_literal_braces_brevo_cannot_take_for_its_own() {
        let text = |t: &str| Piece::Text(t.to_string());
        let (html, brace) = html_template(&[
            text("<p>Hi "),
            Piece::Hole(2),
            text("!</p><style>a{color:red}</style>"),
        ]);
        assert_eq!(
            html,
            "{% autoescape off %}<p>Hi {{ params.bltn2 }}!</p><style>a{color:red}</style>{% endautoescape %}"
        );
        assert!(!brace);
        // `{{`, `{%` and `{#` as written, a `{` before a hole, and a `{` at the end.
        let (html, brace) =
            html_template(&[text("{{x}} {%y%} {#z#} {"), Piece::Hole(0), text("}{")]);
        let b = "{{ params.bltn_brace }}";
        assert_eq!(
            html,
            "{% autoescape off %}B{x}} B%y%} B#z#} B{{ params.bltn0 }}}B{% endautoescape %}"
                .replace('B', b)
        );
        assert!(brace);
        // Every `{` left is followed by none of `{`, `%`, `#`: Brevo sees no tag of ours.
        let inner = html
            .trim_start_matches("{% autoescape off %}")
            .trim_end_matches("{% endautoescape %}")
            .replace(b, "")
            .replace("{{ params.bltn0 }}", "");
        assert!(
            !["{{", "{%", "{#"].iter().any(|t| inner.contains(t)),
            "{inner}"
        );
    }

    fn brevo(html_holes: Vec<usize>, holes: usize) -> Brevo {
        Brevo {
            endpoint: ENDPOINT.into(),
            key: Secret::placeholder(),
            key_env: "BREVO_API_KEY".into(),
            letterhead: Letterhead {
                from: "news@example.org".parse().unwrap(),
                reply_to: None,
                tag: "2020-06".into(),
            },
            limit: BATCH_LIMIT,
            html: "{% autoescape off %}{{ params.bltn0 }}{% endautoescape %}".into(),
            html_holes,
            brace: false,
            text: Document::default(),
            holes,
        }
    }

    #[test]
    fn readers_whose_params_brevo_would_refuse_are_left_out_or_go_in_the_next_request() {
        let brevo = brevo(vec![0], 1);
        let message = |i: usize, size: usize| Outgoing {
            envelope: crate::message::Envelope {
                from: "news@example.org".parse().unwrap(),
                to: format!("r{i}@example.org").parse().unwrap(),
            },
            message_id: format!("<{i}@x>"),
            payload: crate::message::Payload::Values(Filled {
                to_name: None,
                subject: "Hi".into(),
                values: vec!["x".repeat(size)],
                headers: Vec::new(),
            }),
        };
        // 95 KB each: ten fit in Brevo's 1000 KB a request, the next two wait; 120 KB is
        // more than one version takes.
        let mut messages: Vec<Outgoing> = (0..12).map(|i| message(i, 95_000)).collect();
        messages.insert(3, message(99, 120_000));
        let batch = Batch {
            key: "k".into(),
            messages,
        };
        let request = brevo.request(&batch).unwrap();
        let Body::Json(json) = &request.body else {
            panic!("a JSON body")
        };
        assert_eq!(json.items(), 10);
        let answer = Answer {
            status: 201,
            headers: reqwest::header::HeaderMap::new(),
            body: serde_json::to_vec(&json!({"messageIds": vec!["<id>"; 10]})).unwrap(),
        };
        let outcomes = brevo.outcomes(&batch, &answer).unwrap();
        let kinds: Vec<Option<Kind>> = outcomes
            .iter()
            .map(|o| o.as_ref().err().map(|f| f.kind))
            .collect();
        let mut expected = vec![None; 13];
        expected[3] = Some(Kind::Permanent);
        expected[12] = Some(Kind::Bystander);
        expected[11] = Some(Kind::Bystander);
        assert_eq!(kinds, expected);
        // Alone, a reader whose params are too big is refused for good, never sent empty.
        let alone = Batch {
            key: "k".into(),
            messages: vec![message(0, 120_000)],
        };
        assert!(matches!(
            brevo.request(&alone),
            Err(RequestError::TooBig { .. })
        ));
    }

    #[test]
    fn waits_as_the_rate_limit_headers_say() {
        let provider = |headers: HeaderMap| Answer {
            status: 429,
            headers,
            body: Vec::new(),
        };
        let mut h = HeaderMap::new();
        h.insert("x-sib-ratelimit-reset", "12".parse().unwrap());
        let brevo = brevo(Vec::new(), 0);
        assert_eq!(
            brevo.retry_after(&provider(h.clone())),
            Some(Duration::from_secs(12))
        );
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(
            brevo.retry_after(&provider(h)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(brevo.retry_after(&provider(HeaderMap::new())), None);
    }
}

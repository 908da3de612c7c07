//! Amazon SES (API v2): `SendEmail` with raw content, one message a request, the message
//! byte for byte as the SMTP path builds it (headers, List-Unsubscribe, and bulletin's DKIM
//! signature when the profile has `dkim`), signed with AWS Signature Version 4. SES has no
//! batch for raw messages (`SendBulkEmail` takes only stored templates) and no idempotency key.
//!
//! API reference: <https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html>
//! (request, answer and errors); tags:
//! <https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_MessageTag.html>; errors every
//! operation may answer: <https://docs.aws.amazon.com/ses/latest/APIReference-V2/CommonErrors.html>;
//! quota errors: <https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html>;
//! throttling: SES says "slow down" as HTTP 429 `TooManyRequestsException`, and as HTTP 400
//! `ThrottlingException` (CommonErrors: "the request was denied due to request throttling";
//! the quota guide's "Throttling – Maximum sending rate exceeded"): every one is a wait, never
//! a reader's failure (see `throttled`);
//! signing: <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html>.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Answer, Auth, Body, Common, Context, Json, Provider, ProviderError, Request, RequestError,
    SettingsError, needed,
};
use crate::clock::Clock;
use crate::message::Form;
use crate::transport::{Accepted, Batch, Failure, Kind};
use crate::values::{Dkim, Secret};

/// `transport = "ses"`.
pub const TRANSPORT: &str = "ses";

/// An Amazon SES profile's settings, as `bulletin.toml` writes them.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `api_key_env` holds the access key ID.
    #[serde(flatten)]
    pub common: Common,
    /// The environment variable holding the secret access key.
    pub secret_env: Option<String>,
    /// The AWS region: "eu-west-1".
    pub region: Option<String>,
    /// A configuration set for the messages.
    pub configuration_set: Option<String>,
    /// DKIM signing by bulletin, for a message sent byte for byte as built.
    pub dkim: Option<Dkim>,
}

impl Settings {
    /// The variable holding the secret access key, which SES needs.
    pub fn secret_env(&self) -> Result<&str, SettingsError> {
        needed(
            &self.secret_env,
            TRANSPORT,
            "secret_env",
            "\"AWS_SECRET_ACCESS_KEY\"",
        )
    }

    /// The AWS region, which SES needs.
    pub fn region(&self) -> Result<&str, SettingsError> {
        needed(&self.region, TRANSPORT, "region", "\"eu-west-1\"")
    }

    /// Whether the settings go together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.secret_env()?;
        self.region()?;
        self.common.validate(TRANSPORT)
    }
}

/// The name SES signs requests under (its "signingName"; the host says "email").
pub const SERVICE: &str = "ses";

/// One message a request: SES v2 takes raw content only one message at a time.
pub const BATCH_LIMIT: usize = 1;

/// How long to wait after a 429, which says nothing of how long: SES's sending rate is a
/// number of messages a second, so a second or two lets it pass.
pub const THROTTLE: Duration = Duration::from_secs(2);

pub struct Ses {
    endpoint: String,
    region: String,
    access_key: Secret,
    secret_key: Secret,
    key_env: String,
    secret_env: String,
    configuration_set: Option<String>,
    tag: String,
    /// The time each request is signed at.
    clock: Arc<dyn Clock>,
}

impl Ses {
    pub fn new(settings: &Settings, context: &Context) -> Result<Ses, ProviderError> {
        let common = &settings.common;
        let region = settings.region()?;
        let secret_env = settings.secret_env()?;
        Ok(Ses {
            endpoint: common.endpoint(&format!("https://email.{region}.amazonaws.com")),
            access_key: context.secret(&common.api_key_env)?,
            secret_key: context.secret(secret_env)?,
            key_env: common.api_key_env.clone(),
            secret_env: secret_env.to_string(),
            region: region.to_string(),
            configuration_set: settings.configuration_set.clone(),
            tag: super::tag_value(&context.letterhead.tag),
            clock: Arc::clone(&context.clock),
        })
    }
}

impl Provider for Ses {
    fn name(&self) -> &'static str {
        "Amazon SES"
    }

    fn batch_limit(&self) -> usize {
        BATCH_LIMIT
    }

    fn form(&self) -> Form {
        Form::Mime
    }

    fn request<'a>(&'a self, batch: &'a Batch) -> Result<Request<'a>, RequestError> {
        let [message] = batch.messages.as_slice() else {
            return Err(RequestError::OneAtATime {
                provider: self.name(),
                count: batch.messages.len(),
            });
        };
        // From and To are read from the message's headers: Destination and FromEmailAddress
        // are optional with raw content, and leaving them out sends the message as built.
        let mut body = json!({
            "Content": {"Raw": {"Data": base64::engine::general_purpose::STANDARD.encode(message.mime()?)}},
            // Tag names and values take ASCII letters, digits, `_` and `-` only.
            "EmailTags": [{"Name": "issue", "Value": self.tag}],
        });
        if let Some(set) = &self.configuration_set {
            body["ConfigurationSetName"] = set.as_str().into();
        }
        Ok(Request {
            url: format!("{}/v2/email/outbound-emails", self.endpoint),
            headers: Vec::new(),
            auth: Auth::Signed,
            body: Body::Json(Json::value(&body)?),
        })
    }

    /// A 200 answer gives the message's `MessageId`. Errors that concern the account, not the
    /// reader, stop the run (see `account_stops`); the others follow the shared rules.
    fn outcomes(&self, batch: &Batch, answer: &Answer) -> Option<Vec<Result<Accepted, Failure>>> {
        if answer.status == 200 {
            let id = answer.json()?.get("MessageId")?.as_str()?.to_string();
            return Some(
                batch
                    .messages
                    .iter()
                    .map(|_| {
                        Ok(Accepted {
                            reply: format!("accepted by Amazon SES, MessageId {id}"),
                        })
                    })
                    .collect(),
            );
        }
        if let Some(failure) = throttled(answer) {
            return Some(vec![Err(failure); batch.messages.len()]);
        }
        let failure = account_stops(answer)?;
        Some(
            batch
                .messages
                .iter()
                .map(|_| Err(failure.clone()))
                .collect(),
        )
    }

    fn sign(&self, request: &mut reqwest::Request) -> Result<(), RequestError> {
        sign_v4(
            request,
            &Signer {
                access_key: self.access_key.expose(),
                secret_key: self.secret_key.expose(),
                region: &self.region,
                service: SERVICE,
            },
            SystemTime::from(self.clock.now()),
        )
        .map_err(|source| RequestError::Sign {
            provider: self.name(),
            source,
        })
    }

    /// SES's 429 carries no Retry-After.
    fn retry_after(&self, answer: &Answer) -> Option<Duration> {
        Some(super::retry_after_header(&answer.headers).unwrap_or(THROTTLE))
    }

    fn error_message(&self, answer: &Answer) -> String {
        let (kind, message) = aws_error(answer);
        match kind {
            Some(kind) => format!("{kind}: {message}"),
            None => message,
        }
    }

    fn credentials(&self) -> String {
        format!(
            "the access key ID in {} and the secret access key in {} (and that the key may send with SES in {})",
            self.key_env, self.secret_env, self.region
        )
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

/// The failure that waits and tries again when SES says it is sent to too fast, whatever
/// the HTTP status: `ThrottlingException` (HTTP 400), `TooManyRequestsException` (429),
/// `Throttling` (the v1 API's name), "Maximum sending rate exceeded". The day's quota used up
/// comes as a throttling error too, and is not one to wait seconds for (see
/// `account_stops`).
fn throttled(answer: &Answer) -> Option<Failure> {
    let (kind, message) = aws_error(answer);
    let kind = kind.unwrap_or_default();
    if message.contains("Daily message quota exceeded") {
        return None;
    }
    let throttling = matches!(
        kind.as_str(),
        "ThrottlingException" | "TooManyRequestsException" | "Throttling"
    ) || message.contains("Maximum sending rate exceeded");
    throttling.then(|| Failure {
        kind: Kind::Throttled(super::retry_after_header(&answer.headers).unwrap_or(THROTTLE)),
        reply: format!(
            "Amazon SES answered HTTP {} {kind}: {message}",
            answer.status
        ),
    })
}

/// The failure that stops the run when SES refuses for a reason every other message would
/// meet too, and that waiting seconds does not cure: sending paused for the account or the
/// configuration set, a suspended account, the day's quota used up, an unverified MAIL FROM
/// domain, a configuration set that does not exist. Without this they would be judged by
/// their HTTP status (400, 404) and every reader recorded as refused for good. The readers not
/// sent are sent by the next run; the run stops as for a relay that cannot be reached (not as
/// for refused credentials, whose advice — check the key — would mislead here).
fn account_stops(answer: &Answer) -> Option<Failure> {
    let (kind, message) = aws_error(answer);
    let kind = kind.unwrap_or_default();
    let advice = match kind.as_str() {
        "SendingPausedException" => {
            "sending is paused for the account or the configuration set (see the SES console's reputation page); run the same command again once it is resumed"
        }
        "AccountSuspendedException" => {
            "the SES account is suspended; run the same command again once AWS has restored it"
        }
        "MailFromDomainNotVerifiedException" => {
            "the sender's MAIL FROM domain is not verified in this region"
        }
        "NotFoundException" => "check configuration_set and region in the profile",
        // The quota guide says the day's quota comes back as a throttling error with this
        // text; it is not worth waiting seconds for, whatever the exception.
        _ if message.contains("Daily message quota exceeded") => {
            "the day's sending quota is used up; run the same command again when it is renewed"
        }
        _ => return None,
    };
    Some(Failure {
        kind: Kind::Unreachable,
        reply: format!(
            "Amazon SES answered HTTP {} {kind}: {message}; {advice}",
            answer.status
        ),
    })
}

/// The error's type and message. The type is in the `x-amzn-ErrorType` header (or `code`,
/// `__type` in the body), sometimes with a namespace before `#` or a URL after `:`, as AWS's
/// own JSON error parsers read it.
fn aws_error(answer: &Answer) -> (Option<String>, String) {
    let body = answer.json();
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let kind = answer
        .header("x-amzn-errortype")
        .map(str::to_string)
        .or_else(|| field("code"))
        .or_else(|| field("__type"))
        .map(|k| {
            let k = k.split([':', ',']).next().unwrap_or_default();
            k.rsplit('#').next().unwrap_or_default().trim().to_string()
        })
        .filter(|k| !k.is_empty());
    let message = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_else(|| super::error_message(&answer.body));
    (kind, message)
}

/// Who signs, where, for which service.
struct Signer<'a> {
    access_key: &'a str,
    secret_key: &'a str,
    region: &'a str,
    service: &'a str,
}

/// Why a request could not be signed: the signing crate's error, or what it cannot sign.
type SignError = Box<dyn std::error::Error + Send + Sync>;

/// Signs a request that is otherwise complete with AWS Signature Version 4 as of `time`:
/// adds `x-amz-date` and `Authorization`, covering every header already on the request (so
/// the content type is signed), the host and the body.
fn sign_v4(
    request: &mut reqwest::Request,
    signer: &Signer,
    time: SystemTime,
) -> Result<(), SignError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};

    let identity = aws_credential_types::Credentials::new(
        signer.access_key,
        signer.secret_key,
        None,
        None,
        "profile",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(signer.region)
        .name(signer.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()?
        .into();
    let body = match request.body() {
        Some(b) => b.as_bytes().ok_or("the body is a stream")?,
        None => &[],
    };
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| Ok((name.as_str(), value.to_str()?)))
        .collect::<Result<Vec<_>, SignError>>()?;
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.url().as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _signature) = sign(signable, &params)?.into_parts();
    for (name, value) in instructions.headers() {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())?;
        let mut value = reqwest::header::HeaderValue::from_str(value)?;
        value.set_sensitive(true);
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS Signature V4 test suite's `post-vanilla` case (it ships with the aws-sigv4
    /// crate, `aws-signing-test-suite/v4/post-vanilla`): `POST /` to example.amazonaws.com at
    /// 2015-08-30T12:36:00Z, service "service" in us-east-1.
    #[test]
    fn signs_as_the_aws_test_suite_says() {
        let client = reqwest::Client::new();
        let mut request = client
            .post("https://example.amazonaws.com/")
            .build()
            .unwrap();
        let signer = Signer {
            access_key: "AKIDEXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "service",
        };
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        sign_v4(&mut request, &signer, time).unwrap();
        assert_eq!(request.headers()["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            request.headers()["authorization"].to_str().unwrap(),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    #[test]
    fn signs_at_the_time_of_the_clock_it_was_given() {
        use crate::clock::FixedClock;
        use crate::merge::{FieldTable, Prepared};
        use crate::message::{Letterhead, Template};

        let at = chrono::DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z")
            .unwrap()
            .to_utc();
        let letterhead = Letterhead {
            from: "news@example.org".parse().unwrap(),
            reply_to: None,
            tag: "2020-06".into(),
        };
        let empty = || Prepared::text("", &FieldTable::default());
        let template = Template::new(empty(), empty(), empty());
        // A dry run: the credentials are placeholders, whatever the environment holds.
        let context = Context {
            letterhead: &letterhead,
            template: &template,
            clock: Arc::new(FixedClock(at)),
            dry_run: true,
        };
        let settings = Settings {
            common: Common::new("BULLETIN_TEST_SES_KEY_NOT_SET"),
            secret_env: Some("BULLETIN_TEST_SES_SECRET_NOT_SET".into()),
            region: Some("us-east-1".into()),
            configuration_set: None,
            dkim: None,
        };
        let ses = Ses::new(&settings, &context).unwrap();
        let signed = || {
            let mut request = reqwest::Client::new()
                .post("https://email.us-east-1.amazonaws.com/v2/email/outbound-emails")
                .header("content-type", "application/json")
                .body("{}")
                .build()
                .unwrap();
            ses.sign(&mut request).unwrap();
            request
        };
        let request = signed();
        assert_eq!(request.headers()["x-amz-date"], "20150830T123600Z");
        let authorization = request.headers()["authorization"].to_str().unwrap();
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=not-needed-for-a-dry-run/20150830/us-east-1/ses/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ce889c739e98962d5000324ee281bfc450577c57a38121e2fc2a4cfc59901146"
        );
        // The same request at the same moment: the same signature.
        assert_eq!(signed().headers()["authorization"], authorization);
    }

    #[test]
    fn every_documented_throttling_answer_is_a_wait_and_the_days_quota_is_not() {
        let answer = |status: u16, kind: &str, message: &str| Answer {
            status,
            headers: {
                let mut h = reqwest::header::HeaderMap::new();
                h.insert("x-amzn-errortype", kind.parse().unwrap());
                h
            },
            body: serde_json::to_vec(&json!({ "message": message })).unwrap(),
        };
        for (status, kind, message) in [
            (400, "ThrottlingException", "Rate exceeded"),
            (429, "TooManyRequestsException", "Too many requests"),
            (400, "Throttling", "Maximum sending rate exceeded."),
            (
                400,
                "MessageRejected",
                "Throttling – Maximum sending rate exceeded.",
            ),
        ] {
            let f = throttled(&answer(status, kind, message)).expect(kind);
            assert_eq!(f.kind, Kind::Throttled(THROTTLE), "{kind}");
        }
        let quota = answer(400, "ThrottlingException", "Daily message quota exceeded.");
        assert!(throttled(&quota).is_none());
        assert_eq!(account_stops(&quota).unwrap().kind, Kind::Unreachable);
        assert!(
            throttled(&answer(
                400,
                "MessageRejected",
                "Email address is not verified."
            ))
            .is_none()
        );
    }

    #[test]
    fn reads_aws_error_types_however_they_come() {
        let answer = |header: Option<&str>, body: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            if let Some(h) = header {
                headers.insert("x-amzn-errortype", h.parse().unwrap());
            }
            Answer {
                status: 400,
                headers,
                body: body.as_bytes().to_vec(),
            }
        };
        assert_eq!(
            aws_error(&answer(
                Some("MessageRejected:http://internal.amazon.com/coral/"),
                r#"{"message":"Email address is not verified."}"#
            )),
            (
                Some("MessageRejected".into()),
                "Email address is not verified.".into()
            )
        );
        assert_eq!(
            aws_error(&answer(
                None,
                r#"{"__type":"com.amazonaws.sesv2#SendingPausedException","Message":"Paused"}"#
            )),
            (Some("SendingPausedException".into()), "Paused".into())
        );
        assert_eq!(
            aws_error(&answer(None, "<html>Bad Gateway</html>")),
            (None, "<html>Bad Gateway</html>".into())
        );
    }
}

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
//! signing: <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html>.

use std::time::{Duration, SystemTime};

use base64::Engine;
use serde_json::{Value, json};

use super::{Answer, Auth, Body, Provider, Request, Setup};
use crate::config::Secret;
use crate::message::Form;
use crate::transport::{Accepted, Batch, Failure, Kind};

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
}

impl Ses {
    pub fn new(setup: &Setup) -> Result<Ses, String> {
        let api = setup.api;
        let region = api
            .region
            .clone()
            .ok_or("transport = \"ses\" needs region (e.g. region = \"eu-west-1\")")?;
        let secret_env = api.secret_env.clone().ok_or(
            "transport = \"ses\" needs secret_env (e.g. secret_env = \"AWS_SECRET_ACCESS_KEY\")",
        )?;
        Ok(Ses {
            endpoint: setup.endpoint(&format!("https://email.{region}.amazonaws.com")),
            access_key: setup.api_key()?,
            secret_key: setup.secret(&secret_env)?,
            key_env: api.api_key_env.clone(),
            secret_env,
            region,
            configuration_set: api.configuration_set.clone(),
            tag: super::tag_value(&setup.composer.letterhead().tag),
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

    fn request(&self, batch: &Batch) -> Result<Request, String> {
        let [message] = batch.messages.as_slice() else {
            return Err(format!(
                "Amazon SES takes one message a request, not {}",
                batch.messages.len()
            ));
        };
        // From and To are read from the message's headers: Destination and FromEmailAddress
        // are optional with raw content, and leaving them out sends the message as built.
        let mut body = json!({
            "Content": {"Raw": {"Data": base64::engine::general_purpose::STANDARD.encode(&message.bytes)}},
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
            body: Body::Json(body),
        })
    }

    /// A 200 answer gives the message's `MessageId`. Errors that concern the account, not the
    /// reader, stop the run (see [`account_stops`]); the others follow the shared rules.
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
        let failure = account_stops(answer)?;
        Some(
            batch
                .messages
                .iter()
                .map(|_| Err(failure.clone()))
                .collect(),
        )
    }

    fn sign(&self, request: &mut reqwest::Request) -> Result<(), String> {
        sign_v4(
            request,
            &Signer {
                access_key: self.access_key.expose(),
                secret_key: self.secret_key.expose(),
                region: &self.region,
                service: SERVICE,
            },
            SystemTime::now(),
        )
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

/// Signs a request that is otherwise complete with AWS Signature Version 4 as of `time`:
/// adds `x-amz-date` and `Authorization`, covering every header already on the request (so
/// the content type is signed), the host and the body.
fn sign_v4(
    request: &mut reqwest::Request,
    signer: &Signer,
    time: SystemTime,
) -> Result<(), String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};

    let failed = |e: &dyn std::fmt::Display| format!("cannot sign the request to Amazon SES: {e}");
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
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let body = match request.body() {
        Some(b) => b
            .as_bytes()
            .ok_or_else(|| failed(&"the body is a stream"))?,
        None => &[],
    };
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| Ok((name.as_str(), value.to_str().map_err(|e| failed(&e))?)))
        .collect::<Result<Vec<_>, String>>()?;
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.url().as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    for (name, value) in instructions.headers() {
        let name =
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| failed(&e))?;
        let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|e| failed(&e))?;
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

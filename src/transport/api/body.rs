//! JSON request bodies written from borrowed data, once per attempt, and streamed when big.
//!
//! A provider's request body is a [`Json`]: what the batch shares, written once (`head`),
//! then an item per message (serde `Serialize` structs that borrow the message's parts),
//! then the closing brackets. Nothing of it is copied into a `serde_json::Value`, and a big
//! body is never whole in memory: [`Json::len`] counts its bytes (for `Content-Length`:
//! some APIs refuse chunked uploads), then [`Json::produce`] writes it a chunk at a time
//! into the request as the connection takes it ([`Streamed`]). A retry writes it again from
//! the batch, which the send loop keeps anyway: the only copy of a message is its parts.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

/// One item of a body's list (a message, a version): anything serde can write as JSON.
pub trait Item: Send + Sync {
    fn write(&self, out: &mut dyn io::Write) -> serde_json::Result<()>;
}

impl<T: Serialize + Send + Sync> Item for T {
    fn write(&self, out: &mut dyn io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

/// A JSON body: `head`, the items separated by commas, `tail`.
pub struct Json<'a> {
    head: Vec<u8>,
    items: Vec<Box<dyn Item + 'a>>,
    tail: &'static [u8],
}

impl std::fmt::Debug for Json<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Json")
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

/// How much is written before a chunk goes to the connection.
const CHUNK: usize = 256 * 1024;

/// Bodies up to this size go as one buffer (which can be signed, or sent again by the HTTP
/// client on a stale connection); bigger ones are streamed.
pub const STREAM_ABOVE: u64 = 1024 * 1024;

impl<'a> Json<'a> {
    /// A JSON array of the items: `[item,item…]`.
    pub fn array(items: Vec<Box<dyn Item + 'a>>) -> Json<'a> {
        Json {
            head: b"[".to_vec(),
            items,
            tail: b"]",
        }
    }

    /// The object `shared` (a struct or map) with one more member, `key`, the array of the
    /// items: `{…shared…,"key":[item,item…]}`.
    pub fn object(
        shared: &impl Serialize,
        key: &str,
        items: Vec<Box<dyn Item + 'a>>,
    ) -> serde_json::Result<Json<'a>> {
        let mut head = serde_json::to_vec(shared)?;
        // Compact serde_json writes an object as `{…}` with no space around: the closing
        // brace comes off, and the member goes in its place.
        if head.first() != Some(&b'{') || head.pop() != Some(b'}') {
            return Err(serde::ser::Error::custom(
                "a request body must be a JSON object",
            ));
        }
        if head.len() > 1 {
            head.push(b',');
        }
        serde_json::to_writer(&mut head, key)?;
        head.extend_from_slice(b":[");
        Ok(Json {
            head,
            items,
            tail: b"]}",
        })
    }

    /// A body written whole at once (a small one: a single message, a template).
    pub fn value(value: &impl Serialize) -> serde_json::Result<Json<'static>> {
        Ok(Json {
            head: serde_json::to_vec(value)?,
            items: Vec::new(),
            tail: b"",
        })
    }

    /// How many items the list holds.
    pub fn items(&self) -> usize {
        self.items.len()
    }

    fn write_item(&self, i: usize, out: &mut dyn io::Write) -> serde_json::Result<()> {
        if i > 0 {
            out.write_all(b",").map_err(serde_json::Error::io)?;
        }
        self.items[i].write(out)
    }

    /// The body's size in bytes, counted by writing it to nowhere.
    pub fn len(&self) -> serde_json::Result<u64> {
        let mut count = Count(0);
        for i in 0..self.items.len() {
            self.write_item(i, &mut count)?;
        }
        Ok((self.head.len() + self.tail.len()) as u64 + count.0)
    }

    /// Whether the body is empty (it never is: it has brackets at least).
    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.items.is_empty() && self.tail.is_empty()
    }

    /// The whole body, in one buffer.
    pub fn to_vec(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = self.head.clone();
        for i in 0..self.items.len() {
            self.write_item(i, &mut out)?;
        }
        out.extend_from_slice(self.tail);
        Ok(out)
    }

    /// Writes the body into `chunks`, a chunk at a time, waiting while the connection has not
    /// taken the last ones. Stops early when the request is gone (the receiver dropped); an
    /// error (which [`Json::len`] would have met first) drops the sender, and the body ends
    /// short, which fails the request.
    pub async fn produce(&self, chunks: Chunks) {
        let mut buffer = Vec::with_capacity(CHUNK + CHUNK / 4);
        buffer.extend_from_slice(&self.head);
        for i in 0..self.items.len() {
            if self.write_item(i, &mut buffer).is_err() {
                return;
            }
            if buffer.len() >= CHUNK {
                let chunk = std::mem::replace(&mut buffer, Vec::with_capacity(CHUNK + CHUNK / 4));
                if chunks.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
            }
        }
        buffer.extend_from_slice(self.tail);
        let _ = chunks.send(Bytes::from(buffer)).await;
    }
}

/// An `io::Write` that only counts.
struct Count(u64);

impl io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where a streamed body's chunks go.
pub type Chunks = mpsc::Sender<Bytes>;

/// A request body of a known length whose chunks arrive from [`Json::produce`].
pub struct Streamed {
    chunks: mpsc::Receiver<Bytes>,
    left: u64,
}

impl Streamed {
    /// The body of `len` bytes, and where its chunks go. Two chunks may wait: one being
    /// written to the connection, one ready.
    pub fn new(len: u64) -> (Streamed, Chunks) {
        let (tx, rx) = mpsc::channel(2);
        (
            Streamed {
                chunks: rx,
                left: len,
            },
            tx,
        )
    }
}

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        match self.chunks.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => {
                self.left = self.left.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
            }
            Poll::Ready(None) if self.left == 0 => Poll::Ready(None),
            Poll::Ready(None) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the request body ended short",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Shared<'a> {
        sender: &'a str,
    }

    fn items(n: usize) -> Vec<Box<dyn Item + 'static>> {
        (0..n)
            .map(|i| Box::new(serde_json::json!({"n": i, "pad": "x".repeat(100_000)})) as _)
            .collect()
    }

    #[test]
    fn bodies_are_the_json_they_say_and_count_their_bytes() {
        let object = Json::object(&Shared { sender: "a\"b" }, "messageVersions", items(3)).unwrap();
        let bytes = object.to_vec().unwrap();
        assert_eq!(object.len().unwrap(), bytes.len() as u64);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["sender"], "a\"b");
        assert_eq!(value["messageVersions"][2]["n"], 2);

        let empty = Json::object(&serde_json::json!({}), "list", Vec::new()).unwrap();
        assert_eq!(empty.to_vec().unwrap(), br#"{"list":[]}"#);
        assert_eq!(Json::array(Vec::new()).to_vec().unwrap(), b"[]");
        assert!(Json::object(&"text", "list", Vec::new()).is_err());
        let whole = Json::value(&serde_json::json!({"a": [1]})).unwrap();
        assert_eq!(whole.to_vec().unwrap(), br#"{"a":[1]}"#);
        assert_eq!(whole.len().unwrap(), 9);
    }

    #[test]
    fn a_streamed_body_is_the_same_bytes_in_chunks() {
        let json = Json::array(items(7));
        let whole = json.to_vec().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let streamed = runtime.block_on(async {
            let (mut body, tx) = Streamed::new(json.len().unwrap());
            assert_eq!(
                http_body::Body::size_hint(&body).exact(),
                Some(whole.len() as u64)
            );
            let read = async {
                let mut out = Vec::new();
                let mut chunks = 0;
                while let Some(frame) =
                    std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                        .await
                {
                    out.extend_from_slice(&frame.unwrap().into_data().unwrap());
                    chunks += 1;
                }
                (out, chunks)
            };
            let (_, (out, chunks)) = tokio::join!(json.produce(tx), read);
            assert!(chunks > 1, "{chunks}");
            out
        });
        assert_eq!(streamed, whole);
    }
}

//! The control protocol between `sluice ctl` and `sluice serve`: JSON objects, one per line,
//! over a Unix domain socket. docs/control-protocol.md is its specification.
//!
//! Each side starts with a hello that names the protocol and its version; then the client
//! sends requests (`{"id": N, "command": "table_add ..."}`) and the server answers each with a
//! reply carrying the same id.

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use thiserror::Error;

pub const PROTOCOL: &str = "sluice-control";
pub const VERSION: u64 = 1;
/// The longest request line a server reads; a longer one gets an error reply and the
/// connection is closed.
pub const MAX_LINE: usize = 64 * 1024;

/// What went wrong between a client and a switch.
#[derive(Debug, Error)]
pub enum ControlError {
    #[error("malformed hello: {0}")]
    MalformedHello(serde_json::Error),
    #[error("hello too long (at most {MAX_LINE} bytes); closing")]
    HelloTooLong,
    #[error("not a {PROTOCOL} client")]
    NotOurProtocol,
    #[error("unsupported protocol version {0} (this server speaks {VERSION})")]
    UnsupportedVersion(u64),
    #[error("hello without a version")]
    NoVersion,
    #[error("cannot connect to {}: {error} (is `sluice serve` running?)", path.display())]
    Connect {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot {doing}: {error}")]
    Io {
        doing: &'static str,
        error: std::io::Error,
    },
    #[error("the switch closed the connection")]
    Closed,
    #[error("malformed hello from the switch: {0}")]
    MalformedServerHello(serde_json::Error),
    #[error("malformed reply from the switch: {0}")]
    MalformedReply(serde_json::Error),
    /// The switch refused the client's hello, with its reason.
    #[error("{0}")]
    Refused(String),
    #[error("the switch speaks another protocol version: {0}")]
    OtherVersion(String),
}

fn io(doing: &'static str) -> impl FnOnce(std::io::Error) -> ControlError {
    move |error| ControlError::Io { doing, error }
}

/// A reply to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub id: u64,
    pub ok: bool,
    /// The command's output on success, the error message otherwise.
    pub text: String,
}

impl Reply {
    pub fn to_line(&self) -> String {
        let v = if self.ok {
            json!({"id": self.id, "ok": true, "output": self.text})
        } else {
            json!({"id": self.id, "ok": false, "error": self.text})
        };
        format!("{v}\n")
    }
}

/// The server's hello: protocol, version, and the names a client can complete.
pub fn server_hello(
    program: &str,
    tables: &[String],
    actions: &[String],
    commands: &[&str],
) -> String {
    let v = json!({
        "protocol": PROTOCOL,
        "version": VERSION,
        "program": program,
        "tables": tables,
        "actions": actions,
        "commands": commands,
    });
    format!("{v}\n")
}

pub fn client_hello() -> String {
    format!("{}\n", json!({"protocol": PROTOCOL, "version": VERSION}))
}

/// A JSON object whose keys all differ. serde_json keeps the last of two equal keys, so that
/// `{"command":"table_clear t","command":"table_add ..."}` would run the one a reader of the
/// log is least likely to notice; the protocol refuses such a line instead.
struct Object(Map<String, Value>);

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Object, A::Error> {
                let mut m = Map::new();
                while let Some(k) = a.next_key::<String>()? {
                    let v: Value = a.next_value()?;
                    if m.contains_key(&k) {
                        return Err(A::Error::custom(format_args!("duplicate key {k:?}")));
                    }
                    m.insert(k, v);
                }
                Ok(Object(m))
            }
        }
        d.deserialize_map(Keys)
    }
}

fn object(line: &str) -> Result<Map<String, Value>, serde_json::Error> {
    serde_json::from_str::<Object>(line).map(|o| o.0)
}

/// Checks a client's hello line; the error is the reply to send before closing.
pub fn check_client_hello(line: &str) -> Result<(), ControlError> {
    let v = object(line).map_err(ControlError::MalformedHello)?;
    if v.get("protocol").and_then(Value::as_str) != Some(PROTOCOL) {
        return Err(ControlError::NotOurProtocol);
    }
    match v.get("version").and_then(Value::as_u64) {
        Some(VERSION) => Ok(()),
        Some(other) => Err(ControlError::UnsupportedVersion(other)),
        None => Err(ControlError::NoVersion),
    }
}

/// What the server read from a client line.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Command {
        id: u64,
        command: String,
    },
    /// Not a request, and not run; the reply says why (id 0 when the line had no valid id).
    Malformed {
        id: u64,
        error: String,
    },
}

pub fn parse_request(line: &str) -> Request {
    let malformed = |id, error| Request::Malformed { id, error };
    let v = match object(line) {
        Ok(v) => v,
        Err(e) => return malformed(0, format!("malformed request: {e}")),
    };
    // An id that is not a u64 (negative, fractional, a string, 2^64 or more) cannot be copied
    // into the reply, so the client could not tell which request failed: refuse it.
    let id = match v.get("id") {
        None => 0,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
        Some(other) => {
            return malformed(
                0,
                format!(
                    "malformed request: \"id\" must be an integer from 0 to {}, not {}",
                    u64::MAX,
                    sluice_defs::names::echo(&other.to_string())
                ),
            )
        }
    };
    match v.get("command") {
        Some(Value::String(c)) => Request::Command {
            id,
            command: c.clone(),
        },
        _ => malformed(id, "a request needs a \"command\" string".into()),
    }
}

pub fn request_line(id: u64, command: &str) -> String {
    format!("{}\n", json!({"id": id, "command": command}))
}

pub fn parse_reply(line: &str) -> Result<Reply, ControlError> {
    let v: Value = serde_json::from_str(line).map_err(ControlError::MalformedReply)?;
    let id = v.get("id").and_then(Value::as_u64).unwrap_or(0);
    let ok = v.get("ok").and_then(Value::as_bool).unwrap_or(false);
    let key = if ok { "output" } else { "error" };
    let text = v
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(Reply { id, ok, text })
}

/// Reads one line of at most `max` bytes. Ok(None) at end of input; Err on an over-long line
/// (the rest of it is not read) or an I/O error.
pub fn read_line_limited(r: &mut impl BufRead, max: usize) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(&buf).into_owned())
            });
        }
        let (chunk, done) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (&avail[..i], Some(i + 1)),
            None => (avail, None),
        };
        if buf.len() + chunk.len() > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
        buf.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
    }
}

/// A connected client: the hello exchanged, then one request at a time.
pub struct Client<S: std::io::Read + Write> {
    reader: std::io::BufReader<S>,
    writer: S,
    next_id: u64,
    /// The server's hello.
    pub hello: Value,
}

impl Client<std::os::unix::net::UnixStream> {
    /// Connects to a switch's control socket and exchanges hellos.
    pub fn connect(path: &std::path::Path) -> Result<Self, ControlError> {
        let connect_error = |error| ControlError::Connect {
            path: path.to_owned(),
            error,
        };
        let s = std::os::unix::net::UnixStream::connect(path).map_err(connect_error)?;
        let w = s.try_clone().map_err(connect_error)?;
        Client::handshake(s, w)
    }
}

impl<S: std::io::Read + Write> Client<S> {
    pub fn handshake(read: S, mut writer: S) -> Result<Self, ControlError> {
        // A switch that refuses the connection (too many clients) may answer and close before
        // reading the hello: its reason is still there to read after a failed write.
        let sent = writer
            .write_all(client_hello().as_bytes())
            .map_err(io("talk to the switch"));
        let mut reader = std::io::BufReader::new(read);
        let line = match read_line_limited(&mut reader, MAX_LINE) {
            Ok(Some(line)) => line,
            _ if sent.is_err() => return Err(sent.unwrap_err()),
            Ok(None) => return Err(ControlError::Closed),
            Err(e) => return Err(io("read the switch's hello")(e)),
        };
        let hello: Value =
            serde_json::from_str(&line).map_err(ControlError::MalformedServerHello)?;
        if let Some(false) = hello.get("ok").and_then(Value::as_bool) {
            return Err(ControlError::Refused(
                hello
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("refused")
                    .to_string(),
            ));
        }
        if hello.get("version").and_then(Value::as_u64) != Some(VERSION) {
            return Err(ControlError::OtherVersion(line));
        }
        Ok(Client {
            reader,
            writer,
            next_id: 1,
            hello,
        })
    }

    /// Sends one command and waits for its reply.
    pub fn call(&mut self, command: &str) -> Result<Reply, ControlError> {
        let id = self.next_id;
        self.next_id += 1;
        self.writer
            .write_all(request_line(id, command).as_bytes())
            .map_err(io("send to the switch"))?;
        let line = read_line_limited(&mut self.reader, usize::MAX)
            .map_err(io("read the switch's reply"))?
            .ok_or(ControlError::Closed)?;
        parse_reply(&line)
    }

    /// Names from the server's hello (`tables`, `actions`, `commands`), for completion.
    pub fn names(&self, key: &str) -> Vec<String> {
        self.hello
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_and_versions() {
        assert!(check_client_hello(client_hello().trim()).is_ok());
        assert!(
            check_client_hello(r#"{"protocol":"sluice-control","version":2}"#)
                .unwrap_err()
                .to_string()
                .contains("unsupported protocol version 2")
        );
        assert!(check_client_hello("garbage")
            .unwrap_err()
            .to_string()
            .contains("malformed hello"));
        assert!(check_client_hello(r#"{"protocol":"http"}"#).is_err());
    }

    #[test]
    fn requests_and_replies_round_trip() {
        let line = request_line(7, "table_dump dnat");
        assert_eq!(
            parse_request(line.trim()),
            Request::Command {
                id: 7,
                command: "table_dump dnat".into()
            }
        );
        assert!(matches!(
            parse_request("{"),
            Request::Malformed { id: 0, .. }
        ));
        assert!(matches!(
            parse_request(r#"{"id":3}"#),
            Request::Malformed { id: 3, .. }
        ));
        let r = Reply {
            id: 7,
            ok: false,
            text: "unknown table 'x'".into(),
        };
        assert_eq!(parse_reply(r.to_line().trim()).unwrap(), r);
    }

    #[test]
    fn long_lines_are_refused() {
        let data = format!("{}\nshort\n", "x".repeat(100));
        let mut r = std::io::BufReader::with_capacity(16, data.as_bytes());
        assert!(read_line_limited(&mut r, 50).is_err());
        let mut r = std::io::BufReader::with_capacity(16, "a\nbb\n".as_bytes());
        assert_eq!(read_line_limited(&mut r, 50).unwrap(), Some("a".into()));
        assert_eq!(read_line_limited(&mut r, 50).unwrap(), Some("bb".into()));
        assert_eq!(read_line_limited(&mut r, 50).unwrap(), None);
    }
}

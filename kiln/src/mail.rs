//! Sending email through a pluggable backend (Django's `EMAIL_BACKEND`).
//!
//! A message goes to an [`EmailBackend`]; the `email_backend` setting picks
//! one of Kiln's:
//!
//! - `console` (the default): prints each message to standard output, so
//!   development needs no mail server;
//! - `file`: writes each message as one `.eml` file in `email_file_path`;
//! - `memory`: keeps messages in a process-wide outbox that tests read
//!   ([`outbox`]), as Django's `locmem` backend does.
//!
//! A project that sends real mail implements [`EmailBackend`] over its SMTP
//! or HTTP mail service.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use kiln::mail::{EmailBackend, EmailMessage, MemoryBackend};
//!
//! let backend = MemoryBackend::new();
//! let message = EmailMessage::new("noreply@example.com", ["jane@example.com"], "Hello", "Hi Jane!");
//! backend.send(&message).await?;
//! assert_eq!(backend.messages()[0].subject, "Hello");
//! # Ok::<(), kiln::mail::MailError>(())
//! # }).unwrap();
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

/// The outbox of the `memory` backend chosen by the settings.
static OUTBOX: Mutex<Vec<EmailMessage>> = Mutex::new(Vec::new());

/// One email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// The sender.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
    /// An HTML alternative to the text body.
    pub html: Option<String>,
}

impl EmailMessage {
    /// A plain-text message.
    #[must_use]
    pub fn new<I, S>(from: &str, to: I, subject: &str, body: &str) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            from: from.to_owned(),
            to: to.into_iter().map(Into::into).collect(),
            subject: subject.to_owned(),
            body: body.to_owned(),
            html: None,
        }
    }

    /// Adds an HTML version of the body.
    #[must_use]
    pub fn html(mut self, html: &str) -> Self {
        self.html = Some(html.to_owned());
        self
    }

    /// The message in RFC 5322 form, as the console and file backends write
    /// it.
    ///
    /// # Errors
    ///
    /// [`MailError::HeaderInjection`] when an address or the subject holds a
    /// line break: header injection, which would let a visitor who controls
    /// a subject add recipients.
    pub fn to_rfc5322(&self) -> Result<String, MailError> {
        let headers = std::iter::once(("From", self.from.as_str()))
            .chain(self.to.iter().map(|to| ("To", to.as_str())))
            .chain(std::iter::once(("Subject", self.subject.as_str())));
        for (name, value) in headers {
            if value.contains(['\r', '\n']) {
                return Err(MailError::HeaderInjection {
                    header: name.to_owned(),
                });
            }
        }
        if self.to.is_empty() {
            return Err(MailError::NoRecipient);
        }
        let mut out = String::new();
        let _ = writeln!(out, "From: {}", self.from);
        let _ = writeln!(out, "To: {}", self.to.join(", "));
        let _ = writeln!(out, "Subject: {}", encode_header(&self.subject));
        let _ = writeln!(
            out,
            "Date: {}",
            chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S +0000")
        );
        let _ = writeln!(out, "MIME-Version: 1.0");
        match &self.html {
            None => {
                let _ = writeln!(out, "Content-Type: text/plain; charset=utf-8");
                let _ = writeln!(out, "Content-Transfer-Encoding: 8bit\n");
                out.push_str(&self.body);
            }
            Some(html) => {
                let boundary = format!("kiln-{}", uuid::Uuid::new_v4().simple());
                let _ = writeln!(
                    out,
                    "Content-Type: multipart/alternative; boundary=\"{boundary}\"\n"
                );
                for (kind, part) in [("plain", &self.body), ("html", html)] {
                    let _ = writeln!(out, "--{boundary}");
                    let _ = writeln!(out, "Content-Type: text/{kind}; charset=utf-8");
                    let _ = writeln!(out, "Content-Transfer-Encoding: 8bit\n");
                    let _ = writeln!(out, "{part}");
                }
                let _ = write!(out, "--{boundary}--");
            }
        }
        out.push('\n');
        Ok(out.replace('\n', "\r\n"))
    }
}

/// A subject outside ASCII as an RFC 2047 encoded word.
fn encode_header(value: &str) -> String {
    if value.is_ascii() {
        return value.to_owned();
    }
    let mut out = String::from("=?utf-8?q?");
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b',' | b'!' => out.push(byte as char),
            b' ' => out.push('_'),
            _ => {
                let _ = write!(out, "={byte:02X}");
            }
        }
    }
    out.push_str("?=");
    out
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// A header value held a line break.
    #[error(
        "the {header} header holds a line break (header injection); remove line breaks from addresses and subjects"
    )]
    HeaderInjection {
        /// The header.
        header: String,
    },
    /// The message has no recipient.
    #[error("the message has no recipient; give at least one address in `to`")]
    NoRecipient,
    /// Writing the message failed.
    #[error("cannot write the message to {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A backend of the project's own failed.
    #[error("sending the message failed: {0}")]
    Other(String),
}

/// Something that delivers email.
pub trait EmailBackend: Send + Sync + std::fmt::Debug {
    /// Sends one message.
    ///
    /// # Errors
    ///
    /// [`MailError`] when the message is malformed or cannot be delivered.
    fn send<'a>(&'a self, message: &'a EmailMessage) -> BoxFuture<'a, Result<(), MailError>>;
}

/// Which of Kiln's backends the settings pick (`email_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailBackendName {
    /// [`ConsoleBackend`].
    Console,
    /// [`FileBackend`].
    File,
    /// The process-wide [`MemoryBackend`] read by [`outbox`].
    Memory,
}

/// The backend the settings pick, with the project folder for relative
/// paths.
#[must_use]
pub fn backend_from_settings(settings: &Settings, root: &Path) -> Arc<dyn EmailBackend> {
    match settings.email_backend {
        EmailBackendName::Console => Arc::new(ConsoleBackend),
        EmailBackendName::File => Arc::new(FileBackend::new(root.join(&settings.email_file_path))),
        EmailBackendName::Memory => Arc::new(MemoryBackend::global()),
    }
}

/// Prints each message to standard output.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleBackend;

impl EmailBackend for ConsoleBackend {
    fn send<'a>(&'a self, message: &'a EmailMessage) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let text = message.to_rfc5322()?.replace("\r\n", "\n");
            println!("{text}{}", "-".repeat(79));
            Ok(())
        })
    }
}

/// Writes each message as a `.eml` file in a folder (created when missing).
#[derive(Debug, Clone)]
pub struct FileBackend {
    folder: PathBuf,
}

impl FileBackend {
    /// A backend writing into `folder`.
    #[must_use]
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self {
            folder: folder.into(),
        }
    }
}

impl EmailBackend for FileBackend {
    fn send<'a>(&'a self, message: &'a EmailMessage) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let text = message.to_rfc5322()?;
            let io = |path: &Path| {
                let path = path.to_owned();
                move |source| MailError::Io { path, source }
            };
            tokio::fs::create_dir_all(&self.folder)
                .await
                .map_err(io(&self.folder))?;
            // Time first, so that a folder listing reads in sending order.
            let name = format!(
                "{}-{}.eml",
                chrono::Utc::now().format("%Y%m%d-%H%M%S%.6f"),
                uuid::Uuid::new_v4().simple()
            );
            let path = self.folder.join(name);
            tokio::fs::write(&path, text).await.map_err(io(&path))
        })
    }
}

/// Keeps messages in memory, for tests.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    /// `None`: the process-wide outbox.
    messages: Option<Arc<Mutex<Vec<EmailMessage>>>>,
}

impl MemoryBackend {
    /// A backend with an outbox of its own.
    #[must_use]
    pub fn new() -> Self {
        Self {
            messages: Some(Arc::default()),
        }
    }

    /// The backend `email_backend = "memory"` uses: its messages are in
    /// [`outbox`].
    #[must_use]
    pub fn global() -> Self {
        Self { messages: None }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Vec<EmailMessage>) -> R) -> R {
        // A poisoned lock only means a test panicked while holding it; the
        // messages are still there.
        let lock = |mutex: &Mutex<Vec<EmailMessage>>| {
            let mut guard = mutex
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        };
        match &self.messages {
            Some(messages) => lock(messages),
            None => lock(&OUTBOX),
        }
    }

    /// The messages sent so far, oldest first.
    #[must_use]
    pub fn messages(&self) -> Vec<EmailMessage> {
        self.with(|messages| messages.clone())
    }

    /// Empties the outbox.
    pub fn clear(&self) {
        self.with(Vec::clear);
    }
}

impl EmailBackend for MemoryBackend {
    fn send<'a>(&'a self, message: &'a EmailMessage) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            // Checked as the other backends check it, so tests see the same
            // errors production would.
            message.to_rfc5322()?;
            self.with(|messages| messages.push(message.clone()));
            Ok(())
        })
    }
}

/// What the `memory` backend chosen by the settings has sent, oldest first
/// (Django's `mail.outbox`).
#[must_use]
pub fn outbox() -> Vec<EmailMessage> {
    MemoryBackend::global().messages()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> EmailMessage {
        EmailMessage::new(
            "site@example.com",
            ["jane@example.com", "joe@example.com"],
            "Réinitialisation",
            "Follow the link.",
        )
    }

    #[test]
    fn a_message_renders_as_rfc5322_with_encoded_subject() {
        let text = message().to_rfc5322().unwrap();
        assert!(
            text.contains("To: jane@example.com, joe@example.com\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Subject: =?utf-8?q?R=C3=A9initialisation?=\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nFollow the link.\r\n"), "{text}");
        let html = message().html("<p>Follow</p>").to_rfc5322().unwrap();
        assert!(html.contains("multipart/alternative"), "{html}");
        assert!(
            html.contains(
                "text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>Follow</p>"
            ),
            "{html}"
        );
    }

    #[tokio::test]
    async fn header_injection_and_missing_recipients_are_refused() {
        let mut injected = message();
        injected.subject = "Hi\r\nBcc: victim@example.com".to_owned();
        let backend = MemoryBackend::new();
        let error = backend.send(&injected).await.unwrap_err();
        assert!(matches!(error, MailError::HeaderInjection { ref header } if header == "Subject"));
        let nobody = EmailMessage::new("a@example.com", Vec::<String>::new(), "s", "b");
        assert!(matches!(
            backend.send(&nobody).await,
            Err(MailError::NoRecipient)
        ));
        assert!(backend.messages().is_empty());
    }

    #[tokio::test]
    async fn the_file_backend_writes_one_eml_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path().join("mail"));
        backend.send(&message()).await.unwrap();
        backend.send(&message()).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.starts_with("From: site@example.com\r\n"), "{text}");
        assert!(files[0].extension().is_some_and(|ext| ext == "eml"));
    }

    #[tokio::test]
    async fn the_settings_pick_the_backend_and_memory_fills_the_outbox() {
        let mut settings = Settings::defaults_for(true);
        settings.email_backend = EmailBackendName::Memory;
        let backend = backend_from_settings(&settings, Path::new("."));
        let mut unique = message();
        unique.subject = format!("outbox {}", uuid::Uuid::new_v4());
        backend.send(&unique).await.unwrap();
        assert!(outbox().contains(&unique));
        let settings = Settings::from_toml("email_backend = \"smtp\"");
        assert!(settings.is_err(), "an unknown backend is a settings error");
    }
}

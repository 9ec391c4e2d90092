//! Picking up a renewed certificate: the files are compared with what was last read every
//! `server.tls.reload_interval_secs` and read again on SIGHUP. A pair that loads replaces the
//! served one; one that does not (a half-written renewal, a key that does not match) is logged
//! with the reason and the served one stays. With TLS off, SIGHUP is acknowledged in the log
//! (rather than ending the process, its default), so `systemctl reload` is always safe.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{Certificate, CertificateFiles, CurrentCertificate, certificate::Contents};

/// The served certificate and how its reloads went, for the metrics.
#[derive(Debug)]
pub struct Reloads {
    files: CertificateFiles,
    current: Arc<CurrentCertificate>,
    loaded: AtomicU64,
    refused: AtomicU64,
}

impl Reloads {
    /// Reloads of `files` into `current`.
    pub fn new(files: CertificateFiles, current: Arc<CurrentCertificate>) -> Arc<Self> {
        Arc::new(Self {
            files,
            current,
            loaded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// When the served certificate expires (Unix seconds).
    pub fn not_after(&self) -> i64 {
        self.current.info().not_after
    }

    /// New certificates loaded since start.
    pub fn loaded(&self) -> u64 {
        self.loaded.load(Ordering::Relaxed)
    }

    /// New files that did not load since start (the previous certificate stayed).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Reads the files; loads them when `forced` or when they changed since `seen`.
    fn check(&self, seen: &mut Seen, forced: bool) {
        let Seen { last, last_error } = seen;
        let contents = match self.files.read() {
            Ok(contents) => contents,
            Err(error) => {
                if forced || last_error.as_ref() != Some(&error) {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %error, "the TLS certificate files cannot be read; still serving the previous certificate");
                    *last_error = Some(error);
                }
                return;
            }
        };
        if !forced && last.as_ref() == Some(&contents) {
            return;
        }
        *last_error = None;
        let parsed = Certificate::parse(&contents, &self.files, &super::provider());
        *last = Some(contents);
        match parsed {
            Ok(certificate) => {
                let info = certificate.info.clone();
                self.current.replace(certificate);
                self.loaded.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    subject = %info.subject,
                    names = %info.names.join(","),
                    not_after = %super::rfc3339(info.not_after),
                    "TLS certificate loaded; new connections get it"
                );
            }
            Err(error) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %error, "a new TLS certificate was not loaded; still serving the previous one");
            }
        }
    }
}

/// What the watcher last read, and the last reading error it logged (logged once, not per tick).
#[derive(Default)]
struct Seen {
    last: Option<Contents>,
    last_error: Option<String>,
}

/// Watches the certificate files (when `reloads` is some) and SIGHUP until `stop`.
pub fn spawn_reloader(
    reloads: Option<Arc<Reloads>>,
    interval: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut hangups = signal(SignalKind::hangup())
            .inspect_err(|e| tracing::warn!(error = %e, "SIGHUP cannot be handled"))
            .ok();
        // What start-up loaded; a change since is picked up at the first tick.
        let mut seen = Seen {
            last: reloads.as_ref().and_then(|r| r.files.read().ok()),
            last_error: None,
        };
        loop {
            let forced = tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval), if reloads.is_some() => false,
                Some(()) = hangup(&mut hangups) => true,
            };
            let Some(reloads) = reloads.clone() else {
                tracing::info!("SIGHUP: nothing to reload (server.tls is off)");
                continue;
            };
            // File reads and parsing off the runtime's threads: a slow disk holds no request.
            let checked = tokio::task::spawn_blocking(move || {
                reloads.check(&mut seen, forced);
                seen
            })
            .await;
            match checked {
                Ok(checked) => seen = checked,
                Err(error) => {
                    tracing::warn!(error = %error, "the TLS certificate check failed");
                    seen = Seen::default();
                }
            }
        }
    })
}

async fn hangup(signals: &mut Option<Signal>) -> Option<()> {
    match signals {
        Some(signals) => signals.recv().await,
        None => std::future::pending().await,
    }
}

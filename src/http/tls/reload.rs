//! Picking up a renewed certificate: the files are compared with what was last read every
//! `server.tls.reload_interval_secs` and read again on SIGHUP. A pair that loads replaces the
//! served one; one that does not (a broken PEM, a key that does not match) is logged
//! with the reason and the served one stays. With TLS off, SIGHUP is acknowledged in the log
//! (rather than ending the process, its default), so `systemctl reload` is always safe.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
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
    /// What was last read (one check at a time holds it).
    seen: Mutex<Seen>,
    loaded: AtomicU64,
    refused: AtomicU64,
    /// Whether the files as they are now did not load.
    failing: AtomicBool,
}

impl Reloads {
    /// Reloads of `files` into `current`, which start-up loaded from `contents`: a renewal
    /// written since is new to the first check.
    pub fn new(
        files: CertificateFiles,
        current: Arc<CurrentCertificate>,
        contents: Contents,
    ) -> Arc<Self> {
        Arc::new(Self {
            files,
            current,
            seen: Mutex::new(Seen {
                last: Some(contents),
                last_error: None,
            }),
            loaded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failing: AtomicBool::new(false),
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

    /// Whether the files on disk did not load at the last check (the previous certificate is
    /// still served), until files that load replace them.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Reads the files; loads them when `forced` or when they changed since last read.
    fn check(&self, forced: bool) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let Seen { last, last_error } = &mut *seen;
        let contents = match self.files.read() {
            Ok(contents) => contents,
            Err(error) => {
                self.failing.store(true, Ordering::Relaxed);
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
                self.failing.store(false, Ordering::Relaxed);
                tracing::info!(
                    subject = %info.subject,
                    names = %info.names.join(","),
                    not_after = %super::rfc3339(info.not_after),
                    "TLS certificate loaded; new connections get it"
                );
            }
            Err(error) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                self.failing.store(true, Ordering::Relaxed);
                tracing::warn!(error = %error, "a new TLS certificate was not loaded; still serving the previous one");
            }
        }
    }
}

/// What the watcher last read, and the last reading error it logged (logged once, not per tick).
#[derive(Debug)]
struct Seen {
    last: Option<Contents>,
    last_error: Option<String>,
}

/// SIGHUP, handled from now on: called first thing at start-up, so that a reload sent while
/// the database opens (a certbot hook during a restart) does not end the process.
pub fn hangups() -> Option<Signal> {
    signal(SignalKind::hangup())
        .inspect_err(|e| tracing::warn!(error = %e, "SIGHUP cannot be handled"))
        .ok()
}

/// Watches the certificate files (when `reloads` is some) and `hangups` until `stop`.
pub fn spawn_reloader(
    reloads: Option<Arc<Reloads>>,
    interval: Duration,
    mut hangups: Option<Signal>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
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
            if let Err(error) = tokio::task::spawn_blocking(move || reloads.check(forced)).await {
                tracing::warn!(error = %error, "the TLS certificate check failed");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &std::path::Path, name: &str) -> CertificateFiles {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let files = CertificateFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.key, certified.signing_key.serialize_pem()).unwrap();
        std::fs::write(&files.cert, certified.cert.pem()).unwrap();
        files
    }

    #[test]
    fn a_renewal_written_after_start_up_read_the_files_is_new_to_the_first_check() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "first.example");
        let (certificate, contents) = files.load(&super::super::provider()).unwrap();
        let current = CurrentCertificate::new(certificate);
        let reloads = Reloads::new(files, current.clone(), contents);
        reloads.check(false);
        assert_eq!((reloads.loaded(), reloads.refused()), (0, 0), "unchanged");
        // Renewed before the watcher's first look.
        write_pair(dir.path(), "renewed.example");
        reloads.check(false);
        assert_eq!((reloads.loaded(), reloads.refused()), (1, 0));
        assert_eq!(current.info().names, ["renewed.example"]);
        // A broken pair is refused once, and stays failing until files that load replace it.
        std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
        reloads.check(false);
        reloads.check(false);
        assert_eq!((reloads.refused(), reloads.failing()), (1, true));
        write_pair(dir.path(), "fixed.example");
        reloads.check(false);
        assert_eq!((reloads.loaded(), reloads.failing()), (2, false));
    }
}

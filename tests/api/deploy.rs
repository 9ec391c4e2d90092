//! Running searchgate as a service (deploy/): the systemd unit passes `systemd-analyze verify`;
//! the sample environment file is a valid configuration; the container's health check and entry
//! point are subcommands the binary has, and `searchgate healthcheck` tells a healthy server from
//! none. A missing systemd-analyze skips.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output},
    time::Duration,
};

use crate::helpers::{free_port, searchgate, spawn_binary};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read_repo_file(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `name` on PATH or in the sbin folders (nginx lives in /usr/sbin, which a user's PATH may
/// lack).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `text` with its one `from` replaced: a README edit that removes or repeats it must update
/// the test, not slip past it.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the README's configuration has {from:?} once (the test replaces it):\n{text}"
    );
    text.replacen(from, to, 1)
}

/// A child process that is killed when the test ends, however it ends.
struct Running(Option<Child>);

impl Running {
    /// Stops it with SIGTERM, the way an operator does (searchgate flushes its audit trail),
    /// and returns what it printed.
    async fn terminate(mut self) -> Output {
        let child = self.0.take().expect("still running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("the wait completes")
            .expect("the child is waited for")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = find_program("systemd-analyze") else {
        eprintln!("SKIPPED: no systemd-analyze (Debian's systemd package has it)");
        return;
    };
    let unit = read_repo_file("deploy/systemd/searchgate.service");
    // verify checks that ExecStart names an executable: the binary under test stands in for
    // /usr/local/bin/searchgate.
    let unit = replace_once(
        &unit,
        "ExecStart=/usr/local/bin/searchgate serve",
        &format!("ExecStart={} serve", env!("CARGO_BIN_EXE_searchgate")),
    );
    for (setting, why) in [
        ("User=searchgate", "a dedicated user"),
        ("StateDirectory=searchgate", "the SQLite file's folder"),
        (
            "WorkingDirectory=/var/lib/searchgate",
            "sqlite://searchgate.db lands there",
        ),
        (
            "EnvironmentFile=/etc/searchgate/searchgate.env",
            "the settings",
        ),
        (
            "ExecReload=/bin/kill -HUP $MAINPID",
            "reload re-reads the certificate",
        ),
        ("ProtectSystem=strict", "a read-only system"),
    ] {
        assert!(
            unit.lines().any(|line| line == setting),
            "the unit has {setting} ({why})"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("searchgate.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // verify exits 0 after an unknown or unparsable setting: it only says so, and is ignored.
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify finds nothing to say about the unit ({}):\n{said}",
        output.status
    );
    // TimeoutStopSec outlasts the default shutdown grace (10 s) with room for the audit flush.
    let stop = read_repo_file("deploy/systemd/searchgate.service")
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim_end_matches('s').parse::<u64>().ok())
        .expect("the unit sets TimeoutStopSec in seconds");
    assert!(stop > 10, "TimeoutStopSec={stop}s exceeds the 10 s grace");
}

#[test]
fn the_sysusers_file_creates_the_service_user() {
    let Some(sysusers) = find_program("systemd-sysusers") else {
        eprintln!("SKIPPED: no systemd-sysusers (Debian's systemd package has it)");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let output = Command::new(sysusers)
        .arg("--dry-run")
        .arg(format!("--root={}", root.path().display()))
        .arg(repo_file("deploy/systemd/searchgate.sysusers"))
        .output()
        .expect("systemd-sysusers runs");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("Creating user 'searchgate'") && said.contains("Creating group 'searchgate'"),
        "the user and group the unit names: {said}"
    );
}

/// `KEY=VALUE` lines of an environment file, comments and blank lines left out.
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line.split_once('=').expect("KEY=VALUE");
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn the_sample_environment_file_is_a_valid_production_configuration() {
    let variables = env_file(&read_repo_file("deploy/systemd/searchgate.env.example"));
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, &str)> = variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // The probes check-config makes must not reach Tavily with a made-up key: nothing listens
    // on port 1. (login.example.com does not resolve.)
    env.push(("SEARCHGATE_SEARCH__TAVILY__BASE_URL", "http://127.0.0.1:1"));
    let output = searchgate(dir.path(), &env)
        .arg("check-config")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 2 is a configuration that cannot be used; 1 is a probe that failed (no IdP here).
    assert_ne!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stdout.contains("profile = \"production\"") && stdout.contains("127.0.0.1:10000"),
        "the file's settings are in effect: {stdout}"
    );
}

/// The arguments of a Dockerfile instruction in exec form (`["/path", "arg", …]`).
fn exec_form(dockerfile: &str, instruction: &str) -> Vec<String> {
    // Continuation lines joined, so `HEALTHCHECK --interval=… \` + `CMD […]` is one line.
    let joined = dockerfile.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with(&format!("{instruction} ")))
        .unwrap_or_else(|| panic!("the Dockerfile has {instruction}"));
    let array = &line[line.find('[').expect("exec form")..=line.rfind(']').expect("exec form")];
    serde_json::from_str(array).expect("a JSON array of strings")
}

#[test]
fn the_container_runs_subcommands_the_binary_has() {
    let dockerfile = read_repo_file("Dockerfile");
    let entrypoint = exec_form(&dockerfile, "ENTRYPOINT");
    let cmd = exec_form(&dockerfile, "CMD");
    let healthcheck = exec_form(&dockerfile, "HEALTHCHECK");
    assert_eq!(entrypoint, ["/usr/local/bin/searchgate"]);
    assert_eq!(
        healthcheck[0], "/usr/local/bin/searchgate",
        "{healthcheck:?}"
    );
    assert!(dockerfile.contains("COPY --from=build /out/searchgate /usr/local/bin/searchgate"));
    // No engine here (and none in CI) to build the image: the binary under test stands in for
    // the image's, with each subcommand's --help (which fails for an unknown one).
    let dir = tempfile::tempdir().unwrap();
    for args in [&cmd[..], &healthcheck[1..]] {
        let output = searchgate(dir.path(), &[])
            .args(args)
            .arg("--help")
            .output()
            .expect("the binary runs");
        assert!(
            output.status.success(),
            "searchgate {} is a subcommand: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        dockerfile.lines().any(|l| l == "EXPOSE 10000")
            && dockerfile.contains("SEARCHGATE_SERVER__BIND=0.0.0.0:10000"),
        "the exposed port is the one it binds"
    );
    let ignored = read_repo_file(".dockerignore");
    for pattern in ["target", "**/node_modules", ".git", "**/*.db"] {
        assert!(
            ignored.lines().any(|l| l == pattern),
            ".dockerignore keeps {pattern} out of the build context"
        );
    }
}

/// `searchgate healthcheck ARGS` in `dir` with `env`, waited for at most 30 s (a hang fails).
async fn healthcheck(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = searchgate(dir, env);
    command.arg("healthcheck").args(args);
    let run = tokio::task::spawn_blocking(move || command.output().expect("the binary runs"));
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("healthcheck returns instead of hanging")
        .expect("the task completes")
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_live_server_and_1_when_none_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = [("PORT", port.as_str())];
    let server = Running(Some(
        spawn_binary(dir.path(), port.parse().unwrap(), &env).await,
    ));

    // Its URL from the same settings as serve (PORT here), as in the container.
    let healthy = healthcheck(dir.path(), &env, &[]).await;
    assert_eq!(
        healthy.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    assert!(String::from_utf8_lossy(&healthy.stdout).contains(&format!("127.0.0.1:{port}")));
    // A 404 is not healthy.
    let url = format!("http://127.0.0.1:{port}/healthz-not-here");
    let wrong = healthcheck(dir.path(), &[], &["--url", &url]).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("404"));

    server.terminate().await;
    let gone = healthcheck(dir.path(), &env, &[]).await;
    assert_eq!(gone.status.code(), Some(1), "nothing listens any more");
    let said = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(said.lines().count(), 1, "one line says why: {said}");
    assert!(
        said.contains("unhealthy") && said.contains("refused"),
        "{said}"
    );
}

#[tokio::test]
async fn healthcheck_gives_up_on_a_server_that_never_answers_after_its_timeout() {
    // Accepts connections (the kernel does, from the backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let output = healthcheck(dir.path(), &[], &["--url", &url, "--timeout", "1"]).await;
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("did not answer within 1s"), "{said}");
    drop(silent);
}

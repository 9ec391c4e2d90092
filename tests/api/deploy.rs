//! Running searchgate as a service (deploy/): `searchgate healthcheck`, the container's health
//! check, tells a healthy server from none, and never hangs on one that does not answer.

use std::{
    path::Path,
    process::{Child, Command, Output},
    time::Duration,
};

use crate::helpers::{free_port, searchgate, spawn_binary};

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

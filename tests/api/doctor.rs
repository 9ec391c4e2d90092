//! Contract: `searchgate doctor URL` walks a server as remote MCP clients do and passes every
//! required step against searchgate's good setups (embedded defaults; the `oidc` provider with a
//! real IdP), while each broken setup fails the step a client would trip on, with a fix naming
//! what to change. The exit code is 0 only when no step failed; `--json` is the same report.

use std::{path::Path, process::Output};

use searchgate::{
    cli::doctor::{Options, Report, Status, diagnose},
    config::{AuthProviderKind, RegistrationMode},
};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::path};

use crate::{
    helpers::{TestApp, free_port, searchgate, spawn_app, spawn_with},
    idp::Idp,
};

/// Every step that must pass on a good loopback setup with `--token`, `--other-audience-token`
/// and `--register`.
const ALL_PASS: &[&str] = &[
    "challenge-legacy",
    "challenge-modern",
    "resource-metadata",
    "resource-metadata-well-known",
    "as-metadata",
    "as-issuer",
    "as-pkce",
    "as-registration",
    "as-authorization-endpoint",
    "as-token-endpoint",
    "as-registration-endpoint",
    "as-jwks",
    "cors-preflight",
    "cors-expose",
    "authenticated-initialize",
    "authenticated-tools-list",
    "authenticated-tools-call",
    "other-audience-refused",
    "registration",
];

/// Runs the real binary's `doctor` with `args` (without blocking the in-process server).
async fn doctor(dir: &Path, args: &[&str]) -> Output {
    let mut command = searchgate(dir, &[]);
    command.arg("doctor").args(args);
    tokio::process::Command::from(command)
        .output()
        .await
        .expect("the binary runs")
}

/// The binary's `--json` report.
async fn doctor_json(dir: &Path, args: &[&str]) -> (Option<i32>, Report) {
    let mut args = args.to_vec();
    args.push("--json");
    let output = doctor(dir, &args).await;
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "--json prints a report ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (output.status.code(), report)
}

fn status_of(report: &Report, step: &str) -> Status {
    report
        .step(step)
        .unwrap_or_else(|| panic!("step {step} ran: {report:#?}"))
        .status
}

fn assert_all_pass(report: &Report, why: &str) {
    for step in ALL_PASS {
        assert_eq!(
            status_of(report, step),
            Status::Pass,
            "{why}: {step}: {:#?}",
            report.step(step)
        );
    }
    for step in ["https", "https-port", "tls-certificate"] {
        assert_eq!(
            status_of(report, step),
            Status::Skip,
            "{why}: {step} does not apply to loopback http"
        );
    }
    assert!(report.passed, "{why}");
}

/// The failed step's fix, which must exist and mention `expected`.
fn assert_fails_with_fix(report: &Report, step: &str, expected: &str) {
    let found = report
        .step(step)
        .unwrap_or_else(|| panic!("step {step} ran: {report:#?}"));
    assert_eq!(found.status, Status::Fail, "{step} fails: {found:#?}");
    let fix = found.fix.as_deref().expect("a failure has a fix");
    assert!(
        fix.contains(expected),
        "{step}: the fix names {expected:?}: {fix}"
    );
    assert!(!report.passed, "one failed step fails the report");
}

async fn embedded(configure: impl FnOnce(&mut searchgate::config::Settings)) -> TestApp {
    spawn_with(
        |s| {
            s.auth.provider = AuthProviderKind::Embedded;
            configure(s);
        },
        |b| b,
    )
    .await
}

/// A token from the embedded server of `app` (its database, its address) through
/// `searchgate token`, for the resource at `mcp_path`.
async fn embedded_token(app: &TestApp, dir: &Path, mcp_path: &str) -> String {
    let database = format!("sqlite://{}", app.db_path.display());
    let bind = app.addr.to_string();
    let command = searchgate(
        dir,
        &[
            ("SEARCHGATE_DATABASE__URL", &database),
            ("SEARCHGATE_SERVER__BIND", &bind),
            ("SEARCHGATE_SERVER__MCP_PATH", mcp_path),
        ],
    );
    let mut command = tokio::process::Command::from(command);
    let output = command.arg("token").output().await.unwrap();
    assert!(
        output.status.success(),
        "searchgate token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_embedded_defaults_pass_every_step_with_a_token_and_a_registration() {
    let app = embedded(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let token = embedded_token(&app, dir.path(), "/web-search/mcp").await;
    let other = embedded_token(&app, dir.path(), "/other/mcp").await;
    let (code, report) = doctor_json(
        dir.path(),
        &[
            &app.mcp_url,
            "--token",
            &token,
            "--other-audience-token",
            &other,
            "--register",
        ],
    )
    .await;
    assert_all_pass(&report, "the embedded defaults");
    assert_eq!(code, Some(0), "every required step passed");
    assert_eq!(report.url, app.mcp_url);
    let tools = &report.step("authenticated-tools-list").unwrap().detail;
    assert!(
        tools.contains("web_search"),
        "the tools are reported: {tools}"
    );
    let registered = &report.step("registration").unwrap().detail;
    assert!(registered.contains("throw-away"), "{registered}");
}

#[tokio::test]
async fn the_text_report_and_the_json_report_say_the_same() {
    let app = embedded(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let text = doctor(dir.path(), &[&app.mcp_url]).await;
    assert_eq!(text.status.code(), Some(0), "no required step failed");
    let text = String::from_utf8(text.stdout).unwrap();
    let (code, report) = doctor_json(dir.path(), &[&app.mcp_url]).await;
    assert_eq!(code, Some(0));
    let raw: Value = serde_json::to_value(&report).unwrap();
    assert_eq!(raw["passed"], json!(true));
    assert!(
        raw["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| ["pass", "fail", "warn", "skip"].contains(&s["status"].as_str().unwrap())),
        "statuses are lowercase words: {raw}"
    );
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(['P', 'F', 'W', 'S']) && l.contains(": "))
        .filter(|l| !l.starts_with("PASSED") && !l.starts_with("FAILED"))
        .collect();
    let expected: Vec<String> = report
        .steps
        .iter()
        .map(|s| format!("{} {}: {}", s.status, s.step, s.detail))
        .collect();
    assert_eq!(lines, expected, "one text line per JSON step, same words");
    assert!(text.ends_with(&format!(
        "PASSED: {} passed, 0 failed, 0 warnings, {} skipped\n",
        report
            .steps
            .iter()
            .filter(|s| s.status == Status::Pass)
            .count(),
        report
            .steps
            .iter()
            .filter(|s| s.status == Status::Skip)
            .count()
    )));
}

#[tokio::test]
async fn the_oidc_provider_with_a_real_idp_passes_every_step() {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/web-search/mcp");
    let other_resource = format!("http://127.0.0.1:{port}/other/mcp");
    let idp = Idp::start(&resource, &other_resource, &[]).await;
    let issuer = idp.issuer();
    let app = spawn_with(
        |s| {
            s.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            s.auth.provider = AuthProviderKind::Oidc;
            s.auth.oidc.issuer = Some(issuer);
        },
        |b| b,
    )
    .await;
    let scope = Some("web-search:read");
    let token = idp.client_token("searchgate-cc", &resource, scope).await;
    let other = idp
        .client_token("searchgate-cc", &other_resource, scope)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = doctor_json(
        dir.path(),
        &[
            &app.mcp_url,
            "--token",
            &token,
            "--other-audience-token",
            &other,
            "--register",
        ],
    )
    .await;
    assert_all_pass(&report, "oidc with the test IdP");
    assert_eq!(code, Some(0));
    let found = &report.step("as-metadata").unwrap().detail;
    assert!(
        found.starts_with(&format!("found at {}/.well-known/", idp.issuer())),
        "the IdP's own metadata is used: {found}"
    );
}

#[tokio::test]
async fn a_public_url_other_than_the_one_clients_use_fails_the_resource_check() {
    let app =
        embedded(|s| s.server.public_url = Some("http://127.0.0.1:1/".parse().unwrap())).await;
    // Where the server really is (its resource names the public URL).
    let used = app.url("/web-search/mcp");
    let dir = tempfile::tempdir().unwrap();
    let output = doctor(dir.path(), &[&used]).await;
    assert_eq!(output.status.code(), Some(1), "a failed step exits 1");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "FAIL resource-metadata-well-known: {}",
            app.url("/.well-known/oauth-protected-resource/web-search/mcp")
        )) && text.contains("names resource \"http://127.0.0.1:1/web-search/mcp\""),
        "{text}"
    );
    assert!(
        text.contains("fix: Set server.public_url (SEARCHGATE_SERVER__PUBLIC_URL)"),
        "{text}"
    );
    let report = diagnose(&options(&used)).await;
    assert_fails_with_fix(
        &report,
        "resource-metadata-well-known",
        "SEARCHGATE_SERVER__PUBLIC_URL",
    );
    assert_eq!(
        status_of(&report, "resource-metadata"),
        Status::Fail,
        "the challenge points at the public URL, which does not answer"
    );
}

/// An authorization server on wiremock serving `metadata` at the RFC 8414 URL, and searchgate
/// trusting it as its OIDC issuer.
async fn with_authorization_server(metadata: impl Fn(&str) -> Value) -> (MockServer, TestApp) {
    let server = MockServer::start().await;
    let issuer = server.uri();
    Mock::given(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(metadata(&issuer)))
        .mount(&server)
        .await;
    let app = spawn_with(
        |s| {
            s.auth.provider = AuthProviderKind::Oidc;
            s.auth.oidc.issuer = Some(issuer);
        },
        |b| b,
    )
    .await;
    (server, app)
}

fn as_metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "registration_endpoint": format!("{issuer}/register"),
    })
}

fn options(url: &str) -> Options {
    Options {
        url: url.to_owned(),
        ..Options::default()
    }
}

#[tokio::test]
async fn an_authorization_server_whose_issuer_differs_fails_the_issuer_check() {
    let (_server, app) = with_authorization_server(|issuer| {
        let mut metadata = as_metadata(issuer);
        metadata["issuer"] = json!(format!("{issuer}/"));
        metadata
    })
    .await;
    let report = diagnose(&options(&app.mcp_url)).await;
    assert_eq!(status_of(&report, "as-metadata"), Status::Pass);
    assert_fails_with_fix(&report, "as-issuer", "auth.oidc.issuer");
    let detail = &report.step("as-issuer").unwrap().detail;
    assert!(
        detail.contains("/\""),
        "the detail shows both issuers: {detail}"
    );
}

#[tokio::test]
async fn an_authorization_server_without_registration_or_cimd_fails_the_registration_check() {
    let (_server, app) = with_authorization_server(|issuer| {
        let mut metadata = as_metadata(issuer);
        metadata
            .as_object_mut()
            .unwrap()
            .remove("registration_endpoint");
        metadata
    })
    .await;
    let mut asked = options(&app.mcp_url);
    asked.register = true;
    let report = diagnose(&asked).await;
    assert_eq!(status_of(&report, "as-issuer"), Status::Pass);
    assert_eq!(status_of(&report, "as-pkce"), Status::Pass);
    assert_fails_with_fix(&report, "as-registration", "Client ID Metadata Documents");
    assert_eq!(status_of(&report, "as-registration-endpoint"), Status::Skip);
    assert_eq!(
        status_of(&report, "registration"),
        Status::Skip,
        "nothing to register at"
    );
}

#[tokio::test]
async fn the_embedded_server_with_registration_off_still_offers_cimd() {
    let app = embedded(|s| s.registration.mode = RegistrationMode::Off).await;
    let mut asked = options(&app.mcp_url);
    asked.register = true;
    let report = diagnose(&asked).await;
    let found = report.step("as-registration").unwrap();
    assert_eq!(
        (found.status, found.detail.as_str()),
        (Status::Pass, "client_id_metadata_document_supported"),
        "without registration, CIMD clients still get a client id"
    );
    assert_eq!(status_of(&report, "as-registration-endpoint"), Status::Skip);
    assert_eq!(status_of(&report, "registration"), Status::Skip);
    assert!(report.passed, "{report:#?}");
}

#[tokio::test]
async fn a_refused_browser_origin_fails_when_asked_for_and_warns_by_default() {
    let app = embedded(|s| s.server.allowed_origins = vec!["https://app.example.com".into()]).await;
    let mut asked = options(&app.mcp_url);
    asked.origin = Some("https://evil.example".into());
    let report = diagnose(&asked).await;
    assert_fails_with_fix(
        &report,
        "cors-preflight",
        "SEARCHGATE_SERVER__ALLOWED_ORIGINS",
    );
    assert_eq!(status_of(&report, "cors-expose"), Status::Skip);

    let report = diagnose(&options(&app.mcp_url)).await;
    let found = report.step("cors-preflight").unwrap();
    assert_eq!(
        found.status,
        Status::Warn,
        "the Inspector's origin is refused: {found:?}"
    );
    assert!(found.detail.contains("http://localhost:6274"), "{found:?}");
    assert!(report.passed, "a warning does not fail the run");

    asked.origin = Some("https://app.example.com".into());
    let report = diagnose(&asked).await;
    assert_eq!(status_of(&report, "cors-preflight"), Status::Pass);
    assert_eq!(status_of(&report, "cors-expose"), Status::Pass);
}

#[tokio::test]
async fn a_server_without_authentication_fails_the_challenge_with_the_setting_to_change() {
    let app = spawn_app().await;
    let report = diagnose(&options(&app.mcp_url)).await;
    assert_fails_with_fix(&report, "challenge-legacy", "SEARCHGATE_AUTH__PROVIDER");
    assert_fails_with_fix(&report, "challenge-modern", "SEARCHGATE_AUTH__PROVIDER");
}

#[tokio::test]
async fn a_token_for_another_resource_that_is_accepted_fails() {
    // The embedded server's own token stands in for "another resource's": it is accepted, which
    // is exactly what the step must catch.
    let app = embedded(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let token = embedded_token(&app, dir.path(), "/web-search/mcp").await;
    let mut asked = options(&app.mcp_url);
    asked.other_audience_token = Some(token.clone());
    asked.token = Some(format!("{token}x"));
    let report = diagnose(&asked).await;
    assert_fails_with_fix(&report, "other-audience-refused", "auth.audiences");
    assert_fails_with_fix(&report, "authenticated-initialize", "aud");
    assert_eq!(status_of(&report, "authenticated-tools-list"), Status::Skip);
}

#[tokio::test]
async fn an_oidc_issuer_one_slash_off_fails_the_issuer_check() {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/web-search/mcp");
    let idp = Idp::start(&resource, "http://127.0.0.1:1/other", &[]).await;
    let slashed = format!("{}/", idp.issuer());
    let app = spawn_with(
        |s| {
            s.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            s.auth.provider = AuthProviderKind::Oidc;
            s.auth.oidc.issuer = Some(slashed.clone());
        },
        |b| b,
    )
    .await;
    let report = diagnose(&options(&app.mcp_url)).await;
    assert_eq!(
        status_of(&report, "as-metadata"),
        Status::Pass,
        "the metadata is found (the slash is dropped to build its URL): {report:#?}"
    );
    assert_fails_with_fix(&report, "as-issuer", "auth.oidc.issuer");
    let detail = &report.step("as-issuer").unwrap().detail;
    assert!(
        detail.contains(&format!("{:?}", idp.issuer())) && detail.contains(&format!("{slashed:?}")),
        "both spellings are shown: {detail}"
    );
}

//! The status page (`GET /ui`) in Debian's headless Chromium against the real admin API: it
//! logs in with the viewer secret, shows each member's state and last error, and after a
//! member goes down its next load shows it down with the probe's error and the health event.
//! (Headless Chromium runs the page's timers in virtual time, so a refresh is a new load.)

use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::admin_client::*;
use crate::harness::*;
use crate::pools::Endpoint;

const VIEWER: &str = "viewer-secret-1";

fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromium is installed (.ci/run installs Debian's chromium)")
}

/// The page's DOM once it has run `wait` of (virtual) time in headless Chromium: its fetches
/// are real, its timers fast-forwarded.
fn dom(url: &str, wait: Duration) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={}", wait.as_millis()))
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `data-state` of the first pool row for `member` in a dumped DOM.
fn member_state(dom: &str, member: &str) -> Option<String> {
    let row = dom.split("<tr data-member=\"").skip(1).find(|r| r.starts_with(&format!("{member}\"")))?;
    let state = row.split("data-state=\"").nth(1)?;
    Some(state.split('"').next()?.to_string())
}

#[test]
fn the_status_page_shows_a_member_going_down() {
    let (m1, port) = Endpoint::start("127.0.0.2", 0);
    let (_m2, _) = Endpoint::start("127.0.0.3", port);
    let state = tempfile::tempdir().unwrap();
    let zone = format!(
        "{admin}[state]\ndir = \"{state}\"\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [[zone.pool]]\nname = \"app\"\nselect = \"all\"\n[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"m1\"\nipv4 = [\"127.0.0.2\"]\n[[zone.pool.member]]\nname = \"m2\"\nipv4 = [\"127.0.0.3\"]\n",
        admin = admin_section(&format!("viewer_secret = \"{VIEWER}\"")),
        state = state.path().display(),
    );
    let s = Server::start(&config("", &zone));
    let url = format!("http://{}/ui#secret={VIEWER}", s.admin_addr());

    // The page itself holds no data and needs no secret; the data needs one.
    let c = Client::for_server(&s);
    let (code, _) = c.call("GET", "/events", Some(("Authorization", &format!("Bearer {VIEWER}"))), None);
    assert_eq!(code, 200, "the viewer secret reads");
    let (code, _) = c.notify(serde_json::json!({"records": []}));
    assert_eq!(code, 200, "the admin secret writes");
    let (code, _) = c.call("POST", "/notify", Some(("Authorization", &format!("Bearer {VIEWER}"))), Some("{}".into()));
    assert_eq!(code, 401, "the viewer secret does not write");

    let before = dom(&url, Duration::from_secs(3));
    assert_eq!(member_state(&before, "m1").as_deref(), Some("up"), "{before}");
    assert_eq!(member_state(&before, "m2").as_deref(), Some("up"));
    assert!(before.contains("gslb.example.org."), "the zones table: {before}");

    m1.set(503);
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.3"]);
    let during = dom(&url, Duration::from_secs(3));
    assert_eq!(member_state(&during, "m1").as_deref(), Some("down"), "{during}");
    assert_eq!(member_state(&during, "m2").as_deref(), Some("up"));
    assert!(during.contains("status 503"), "the probe's error is shown: {during}");
    assert!(during.contains("data-kind=\"health\""), "the event log shows the transition: {during}");
}

//! The status page (`GET /ui`) in Debian's headless Chromium against the real admin API: it
//! logs in with the viewer secret and shows each member's state; then, in the same page and
//! in real time, a member goes down and the page shows it down, with the probe's error and
//! the health event, at the first refresh that starts after the API knows. The test drives
//! Chromium over the DevTools protocol (a websocket on loopback), as browser tests do.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;

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

/// A headless Chromium with one page, driven over the DevTools protocol. Killed on drop.
struct Browser {
    child: Child,
    ws: tungstenite::WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium (its DevTools endpoint on an ephemeral loopback port) and opens `url`.
    fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
            .args(["--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run chromium");
        // Chromium says where its endpoint listens on stderr; the rest is drained so it never
        // blocks on a full pipe.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let endpoint = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("DevTools listening on ").nth(1).map(str::to_string))
            .expect("chromium's DevTools endpoint");
        std::thread::spawn(move || lines.for_each(drop));
        let (ws, _) = tungstenite::connect(endpoint.trim()).expect("connect to DevTools");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(DEADLINE)).unwrap();
        }
        let mut b = Browser { child, ws, session: String::new(), next_id: 0, _profile: profile };
        let target = b.call(None, "Target.createTarget", json!({"url": url}));
        let target = target["targetId"].as_str().expect("a page").to_string();
        let attached = b.call(None, "Target.attachToTarget", json!({"targetId": target, "flatten": true}));
        b.session = attached["sessionId"].as_str().expect("a session").to_string();
        b
    }

    /// One DevTools command and its result (events in between are skipped).
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(tungstenite::Message::text(msg.to_string())).expect("send to DevTools");
        loop {
            let reply = self.ws.read().expect("DevTools reply");
            let Ok(text) = reply.to_text() else { continue };
            let v: Value = serde_json::from_str(text).expect("DevTools JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// What the page shows now: refreshes started and shown, each member's state, its text.
    fn page(&mut self) -> Value {
        let expression = r##"JSON.stringify({
            started: +(document.getElementById("refreshed").dataset.started || 0),
            done: +(document.getElementById("refreshed").dataset.done || 0),
            members: Object.fromEntries([...document.querySelectorAll("#pools tr[data-member]")]
                .map(r => [r.dataset.member, r.querySelector("[data-state]").dataset.state])),
            health_events: document.querySelectorAll('[data-kind="health"]').length,
            text: document.body.innerText,
        })"##;
        let session = self.session.clone();
        let r = self.call(Some(&session), "Runtime.evaluate", json!({"expression": expression, "returnByValue": true}));
        // Before the page has loaded (or while it shows the login), the expression throws.
        match r["result"]["value"].as_str() {
            Some(v) => serde_json::from_str(v).expect("page JSON"),
            None => json!({"not_ready": r}),
        }
    }

    /// Polls the page until `ready` holds (within the deadline).
    fn wait(&mut self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let p = self.page();
            if ready(&p) {
                return p;
            }
            assert!(Instant::now() < deadline, "{what}: {p}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m).len() == 2);
    let url = format!("http://{}/ui#secret={VIEWER}", s.admin_addr());

    // The page itself holds no data and needs no secret; the data needs one.
    let c = Client::for_server(&s);
    let viewer = format!("Bearer {VIEWER}");
    let (code, _) = c.call("GET", "/events", Some(("Authorization", &viewer)), None);
    assert_eq!(code, 200, "the viewer secret reads");
    let (code, _) = c.notify(json!({"records": []}));
    assert_eq!(code, 200, "the admin secret writes");
    let (code, _) = c.call("POST", "/notify", Some(("Authorization", &viewer)), Some("{}".into()));
    assert_eq!(code, 401, "the viewer secret does not write");

    let mut browser = Browser::open(&url);
    let before = browser.wait("both members shown up", |p| p["members"] == json!({"m1": "up", "m2": "up"}));
    assert!(before["text"].as_str().unwrap().contains("gslb.example.org."), "the zones table: {before}");
    assert_eq!(before["health_events"], 0, "nothing went down yet: {before}");

    // In the same page: the member goes down; once the API says so, the first refresh that
    // starts after it shows it.
    m1.set(503);
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.3"]);
    let deadline = Instant::now() + DEADLINE;
    while !c.call("GET", "/records?source=pool", Some(("Authorization", &viewer)), None).1["records"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["member"] == "m1" && r["health"] == "down"))
    {
        assert!(Instant::now() < deadline, "the API shows m1 down");
        std::thread::sleep(Duration::from_millis(20));
    }
    let next = browser.wait("the page", |p| p["started"].is_u64())["started"].as_u64().unwrap() + 1;
    let during = browser.wait("the next refresh shown", |p| p["done"].as_u64().unwrap() >= next);
    assert_eq!(during["members"], json!({"m1": "down", "m2": "up"}), "{during}");
    let text = during["text"].as_str().unwrap();
    assert!(text.contains("status 503"), "the probe's error is shown: {text}");
    assert!(during["health_events"].as_u64().unwrap() >= 1, "the event log shows the transition: {during}");
    assert!(during["started"].as_u64().unwrap() >= 2, "one page, refreshed in place: {during}");
}

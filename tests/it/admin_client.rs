//! A blocking HTTP client for the admin API, and the `[admin]` section the tests use.

use serde_json::Value;

use crate::harness::Server;

/// The admin secret of every test config.
pub const ADMIN_SECRET: &str = "admin-secret-1";

/// A blocking HTTP client for the tests.
pub struct Client {
    base: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: String, root_pem: Option<&str>) -> Client {
        // A request that gets no answer fails the test instead of hanging it.
        let mut b = reqwest::Client::builder().no_proxy().timeout(crate::harness::DEADLINE);
        if let Some(pem) = root_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Client { base, rt, http: b.build().unwrap() }
    }

    pub fn for_server(s: &Server) -> Client {
        Client::new(format!("http://{}", s.admin_addr()), None)
    }

    /// Sends a request; returns the status and the JSON body (`null` when not JSON).
    pub fn call(&self, method: &str, path: &str, auth: Option<(&str, &str)>, body: Option<String>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.base));
            if let Some((h, v)) = auth {
                req = req.header(h, v);
            }
            if let Some(b) = body {
                req = req.header("content-type", "application/json").body(b);
            }
            let resp = req.send().await.expect("admin request");
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    /// GETs a path and returns the body as text.
    pub fn text(&self, path: &str) -> String {
        self.rt.block_on(async {
            self.http.get(format!("{}{path}", self.base)).send().await.unwrap().text().await.unwrap()
        })
    }

    pub fn notify(&self, body: Value) -> (u16, Value) {
        self.call("POST", "/notify", Some(("X-Elchi-Secret", ADMIN_SECRET)), Some(body.to_string()))
    }
}

pub fn admin_section(extra: &str) -> String {
    format!("[admin]\nlisten = \"127.0.0.1:0\"\nsecret = \"{ADMIN_SECRET}\"\n{extra}\n")
}

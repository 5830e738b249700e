//! The device-shadow request topics (AWS IoT's): `$fogchain/things/{thing}/shadow/{get,update,
//! delete}` in, `.../accepted`, `.../rejected`, `.../documents`, `.../delta` out.

use super::Bridge;
use crate::shadow::{rejection_json, Rejection};
use serde_json::Value;

impl Bridge {
    pub(super) async fn on_shadow(&self, thing: &str, op: &str, payload: &[u8]) {
        if !self.devices.contains_key(thing) {
            tracing::debug!(thing, "shadow request for an unknown thing ignored");
            return;
        }
        let token = serde_json::from_slice::<Value>(payload).ok().and_then(|v| v.get("clientToken").cloned());
        let base = format!("{}/things/{thing}/shadow", self.shadow_prefix);
        if !matches!(op, "get" | "update" | "delete") {
            return;
        }
        if let Err(r) = self.shadow_rate(thing) {
            self.publish(format!("{base}/{op}/rejected"), &rejection_json(&r, token.as_ref())).await;
            return;
        }
        match op {
            "get" => match self.shadows.get(thing, token.as_ref()) {
                Ok(doc) => self.publish(format!("{base}/get/accepted"), &doc).await,
                Err(r) => {
                    self.publish(format!("{base}/get/rejected"), &rejection_json(&r, token.as_ref())).await
                }
            },
            "delete" => match self.shadows.delete(thing, token.as_ref()) {
                Ok(v) => self.publish(format!("{base}/delete/accepted"), &v).await,
                Err(r) => {
                    self.publish(format!("{base}/delete/rejected"), &rejection_json(&r, token.as_ref())).await
                }
            },
            "update" => self.update_shadow(thing, payload).await,
            _ => {}
        }
    }

    /// Applies a shadow update and publishes accepted / documents / delta (or rejected).
    pub async fn update_shadow(&self, thing: &str, request: &[u8]) {
        if let Err((r, token)) = self.apply_update(thing, request).await {
            let base = format!("{}/things/{thing}/shadow", self.shadow_prefix);
            self.publish(format!("{base}/update/rejected"), &rejection_json(&r, token.as_ref())).await
        }
    }

    /// A shadow request of the HTTP API (`GET` / `POST` (update) / `DELETE`
    /// `/things/{thing}/shadow`): the document answered, or the rejection. An update publishes
    /// what an MQTT update does (accepted, documents, delta), so the device hears of it.
    pub async fn shadow_http(&self, thing: &str, op: &str, body: &[u8]) -> Result<Value, Rejection> {
        if !self.devices.contains_key(thing) {
            return Err(Rejection { code: 404, message: format!("No shadow exists with name: '{thing}'") });
        }
        self.shadow_rate(thing)?;
        match op {
            "get" => self.shadows.get(thing, None),
            "delete" => self.shadows.delete(thing, None),
            _ => self.apply_update(thing, body).await.map_err(|(r, _)| r),
        }
    }

    /// One shadow request of `thing` against `[limits] shadow-requests-per-second` (MQTT and
    /// HTTP alike): 429 "Too Many Requests" beyond.
    fn shadow_rate(&self, thing: &str) -> Result<(), Rejection> {
        if self.shadow_limiter.check_key(&thing.to_string()).is_err() {
            metrics::counter!("fogchain_proxy_rate_limited_total", "source" => "shadow").increment(1);
            return Err(Rejection { code: 429, message: "Too Many Requests".into() });
        }
        Ok(())
    }

    async fn apply_update(&self, thing: &str, request: &[u8]) -> Result<Value, (Rejection, Option<Value>)> {
        let base = format!("{}/things/{thing}/shadow", self.shadow_prefix);
        let out = self.shadows.update(thing, request)?;
        self.publish(format!("{base}/update/accepted"), &out.accepted).await;
        self.publish(format!("{base}/update/documents"), &out.documents).await;
        if let Some(delta) = out.delta {
            self.publish(format!("{base}/update/delta"), &delta).await;
        }
        Ok(out.accepted)
    }
}

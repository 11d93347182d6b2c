//! The shared child's process: started on first use, restarted with backoff when it dies (its
//! pending calls failed at once, its `initialize` replayed), given up on when it crash-loops.

use std::sync::atomic::Ordering;

use super::{Actor, Event};
use crate::{
    bridge::{child::MAX_QUEUED, envelope, health::Down, process::launch},
    jsonrpc::{self, IdKey},
};

/// Sends `Event::Expire` once a second, until the actor is gone.
pub(super) fn tick(events: tokio::sync::mpsc::WeakUnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match events.upgrade() {
                Some(events) if events.send(Event::Expire).is_ok() => {}
                _ => return,
            }
        }
    });
}

impl Actor {
    /// Fails each call the child has not answered within the request timeout (an answer that
    /// never matches, a child that hangs): the caller gets an error, never a request left open.
    pub(super) fn expire(&mut self) {
        let secs = self.timeout_secs.load(Ordering::Relaxed);
        let limit = std::time::Duration::from_secs(secs);
        let expired: Vec<_> = self
            .requests
            .extract_if(|_, request| request.sent.elapsed() >= limit)
            .map(|(_, request)| request)
            .collect();
        let text = format!("the MCP server did not answer within {secs} s (--request-timeout)");
        for request in expired {
            self.send_to(
                request.session,
                jsonrpc::error(&request.id, jsonrpc::REQUEST_TIMEOUT, &text),
            );
        }
        // An `initialize` never answered: its sessions get the error; a later answer is no
        // one's, and the next session's `initialize` is sent anew.
        if self.init_pending.is_some() && self.init_since.is_some_and(|t| t.elapsed() >= limit) {
            self.init_pending = None;
            for (session, id) in std::mem::take(&mut self.init_waiting) {
                self.send_to(
                    session,
                    jsonrpc::error(&id, jsonrpc::REQUEST_TIMEOUT, &text),
                );
            }
        }
    }

    pub(super) async fn send_child(&mut self, frame: Vec<u8>) {
        if self.child.is_none() && self.down.is_none() && self.failed.is_none() {
            self.spawn().await;
        }
        match &mut self.child {
            Some(process) if self.replay.is_none() => {
                process.send(&frame);
            }
            _ if self.queue.len() < MAX_QUEUED => self.queue.push_back(frame),
            _ => tracing::warn!("shared child: queue full while restarting; dropped a message"),
        }
    }

    pub(super) async fn flush_queue(&mut self) {
        let Some(process) = &mut self.child else {
            return;
        };
        while let Some(frame) = self.queue.pop_front() {
            process.send(&frame);
        }
    }

    pub(super) async fn exited(&mut self, why: String) {
        self.child = None;
        self.replay = None;
        tracing::warn!("shared MCP server {why}");
        let text = format!("the MCP server {why} before answering; it is being restarted");
        for (_, request) in std::mem::take(&mut self.requests) {
            self.send_to(
                request.session,
                jsonrpc::error(&request.id, jsonrpc::SERVER_UNAVAILABLE, &text),
            );
        }
        for (session, id) in std::mem::take(&mut self.init_waiting) {
            self.send_to(
                session,
                jsonrpc::error(&id, jsonrpc::SERVER_UNAVAILABLE, &text),
            );
        }
        self.init_pending = None;
        self.tokens.clear();
        self.from_child.clear();
        let Some(delay) = self.crashes.record() else {
            let failure = format!(
                "it exited {} times within a minute ({why}); not restarting",
                self.crashes.count()
            );
            tracing::error!("shared MCP server unavailable: {failure}");
            self.health.set_failure(Some(failure.clone()));
            self.failed = Some(failure);
            self.queue.clear();
            return;
        };
        self.down = Some(Down::new(&self.health));
        let events = self.events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(events) = events.and_then(|e| e.upgrade()) {
                let _ = events.send(Event::Restart);
            }
        });
    }

    pub(super) async fn spawn(&mut self) {
        let restart = self.down.is_some();
        let process = match launch(&self.spec, "shared") {
            Ok(launched) => launched,
            Err(e) => {
                let failure = format!("cannot start `{}`: {e}", self.spec.program);
                tracing::error!("{failure}");
                self.health.set_failure(Some(failure.clone()));
                self.failed = Some(failure);
                return;
            }
        };
        self.down = None;
        self.child = Some(process);
        if restart {
            self.health.restarts.fetch_add(1, Ordering::Relaxed);
            let replay = self.ids.next("replay");
            if let (Some(frame), Some(process)) = (
                self.init_frame
                    .as_ref()
                    .and_then(|f| envelope::with_id(f, &replay)),
                &mut self.child,
            ) {
                self.replay = Some(IdKey::of(&replay));
                process.send(frame.as_bytes());
                return;
            }
        }
        self.flush_queue().await;
    }
}

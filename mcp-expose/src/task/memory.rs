//! The default [`TaskStore`]: tasks in this process's memory, dropped when they expire.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use super::{StoreError, StoreFuture, TaskChange, TaskRecord, TaskStore};

/// Tasks kept in memory (the default store), at most `capacity` at once; expired ones are
/// dropped as new ones come.
#[derive(Debug)]
pub struct MemoryTaskStore {
    tasks: Mutex<HashMap<String, TaskRecord>>,
    capacity: usize,
}

impl Default for MemoryTaskStore {
    fn default() -> Self {
        Self::with_capacity(10_000)
    }
}

impl MemoryTaskStore {
    /// A store that keeps at most `capacity` unexpired tasks; creating one more fails.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            tasks: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    fn tasks(&self) -> MutexGuard<'_, HashMap<String, TaskRecord>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn expired(record: &TaskRecord) -> bool {
    super::run::now_ms() >= record.expires_at_ms
}

impl TaskStore for MemoryTaskStore {
    fn create(&self, record: TaskRecord) -> StoreFuture<'_, ()> {
        let result = (|| {
            let mut tasks = self.tasks();
            if tasks.len() >= self.capacity {
                tasks.retain(|_, record| !expired(record));
            }
            if tasks.len() >= self.capacity {
                return Err(StoreError::new(format!(
                    "{} tasks are kept already; wait for some to expire",
                    self.capacity
                )));
            }
            tasks.insert(record.task.task.task_id.clone(), record);
            Ok(())
        })();
        Box::pin(std::future::ready(result))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TaskRecord>> {
        let mut tasks = self.tasks();
        let found = match tasks.get(id) {
            Some(record) if expired(record) => {
                tasks.remove(id);
                None
            }
            found => found.cloned(),
        };
        Box::pin(std::future::ready(Ok(found)))
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        change: TaskChange<'a>,
    ) -> StoreFuture<'a, Option<TaskRecord>> {
        let mut tasks = self.tasks();
        let updated = match tasks.get_mut(id) {
            Some(record) if expired(record) => {
                tasks.remove(id);
                None
            }
            Some(record) => {
                change(record);
                Some(record.clone())
            }
            None => None,
        };
        Box::pin(std::future::ready(Ok(updated)))
    }
}

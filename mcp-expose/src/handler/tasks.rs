//! `tasks/get`, `tasks/update` and `tasks/cancel` (the tasks extension): a caller sees and
//! changes only its own tasks. rmcp refuses them with `-32021` to a client that did not
//! declare the extension.

use rmcp::{
    ErrorData, RoleServer,
    model::{CancelTaskParams, GetTaskParams, GetTaskResult, UpdateTaskParams},
    service::RequestContext,
};

use super::{Handler, owner};

impl Handler {
    pub(super) async fn task_get(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.count("tasks/get");
        let owner = owner(&context, &self.session);
        let task = self.state.tasks.get(&request.task_id, owner).await?;
        Ok(GetTaskResult::new(task))
    }

    pub(super) async fn task_update(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.count("tasks/update");
        let owner = owner(&context, &self.session);
        let tasks = &self.state.tasks;
        tasks
            .update(&request.task_id, owner, request.input_responses)
            .await
    }

    pub(super) async fn task_cancel(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.count("tasks/cancel");
        let owner = owner(&context, &self.session);
        self.state.tasks.cancel(&request.task_id, owner).await
    }
}

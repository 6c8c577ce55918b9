//! `GET /` (the inbox; just the filtered list for the filter bar) and `GET /conversations/{id}`
//! (the inbox with a thread open; just the thread pane for htmx). Opening a thread records
//! that this agent has read it.

use std::collections::HashMap;

use axum::{
    Router,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;

use super::is_htmx;
use crate::{
    app::AppState,
    error::{AppError, Result},
    http::auth::Agent,
    i18n::Lang,
    store::{
        agents, contacts,
        conversations::{self, ConversationRow, Filter, Status, Who},
        events,
    },
    views::{
        ids,
        inbox::{ListView, MAX_SEARCH_CHARS, Thread, inbox_page, list_results, thread_pane},
        layout::Shell,
    },
};

/// Conversations listed at once (the newest activity first).
const LIST_LIMIT: i64 = 100;
/// Read counts a page carries for live rows (the most recently active conversations).
const READS_LIMIT: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(show_inbox))
        .route("/conversations/{id}", get(show_conversation))
}

/// The list filter as the address bar carries it: `?who=all|mine|unassigned`,
/// `&status=open|pending|resolved|any` (default open: what still needs an answer), `&q=`.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    who: Option<String>,
    status: Option<String>,
    q: Option<String>,
}

impl ListQuery {
    fn filter(&self, me: i64) -> Result<Filter> {
        let who = match self.who.as_deref().unwrap_or("all") {
            "all" | "" => Who::All,
            "mine" => Who::Mine(me),
            "unassigned" => Who::Unassigned,
            _ => return Err(AppError::Invalid("unknown `who` filter".into())),
        };
        let status = match self.status.as_deref().unwrap_or("open") {
            "any" => None,
            "" => Some(Status::Open),
            s => Some(Status::parse(s).ok_or(AppError::Invalid("unknown status filter".into()))?),
        };
        let search = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        if search.is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS) {
            return Err(AppError::Invalid("the search is too long".into()));
        }
        Ok(Filter {
            who,
            status,
            search: search.map(str::to_owned),
        })
    }
}

async fn show_inbox(
    State(state): State<AppState>,
    agent: Agent,
    lang: Lang,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let filter = q.filter(agent.agent.id)?;
    // The cursor is read before the data, so whatever lands in between is replayed live
    // rather than missed (a replayed row is replaced in place, not duplicated).
    let cursor = events::latest_id(&state.store.pool).await?;
    let data = ListData::load(&state, &agent, &filter).await?;
    let list = data.view(&filter, agent.agent.id);
    let for_list = headers
        .get("hx-target")
        .is_some_and(|t| t.as_bytes() == ids::LIST_RESULTS.as_bytes());
    if is_htmx(&headers) && for_list {
        return Ok(list_results(lang, &list).into_response());
    }
    let shell = shell(lang, &agent, cursor, state.sandbox.is_some());
    Ok(inbox_page(&shell, &list, None).into_response())
}

/// What the list needs from the store for one agent and filter.
struct ListData {
    rows: Vec<ConversationRow>,
    reads: HashMap<i64, i64>,
    reads_after: Option<i64>,
}

impl ListData {
    async fn load(state: &AppState, agent: &Agent, filter: &Filter) -> Result<Self> {
        let pool = &state.store.pool;
        let rows = conversations::list(pool, filter, LIST_LIMIT).await?;
        let (reads, reads_after) = conversations::reads(pool, agent.agent.id, READS_LIMIT).await?;
        Ok(Self {
            rows,
            reads,
            reads_after,
        })
    }

    fn view<'a>(&'a self, filter: &'a Filter, me: i64) -> ListView<'a> {
        ListView {
            filter,
            rows: &self.rows,
            reads: &self.reads,
            reads_after: self.reads_after,
            me,
        }
    }
}

async fn show_conversation(
    State(state): State<AppState>,
    agent: Agent,
    lang: Lang,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let filter = q.filter(agent.agent.id)?;
    let pool = &state.store.pool;
    let cursor = events::latest_id(pool).await?;
    let row = conversations::row(pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let contact = contacts::get(pool, row.contact_id)
        .await?
        .ok_or(AppError::NotFound)?;
    // The latest page; older ones load as the agent scrolls up (`history.rs`).
    let (messages, has_older) = super::history::page_before(pool, id, i64::MAX).await?;
    let agents = agents::active(pool).await?;
    // Having it open is reading it: everything the customer wrote so far. Recording that is
    // worth less than showing the conversation: a store that cannot take writes (a full
    // disk) still lets the agent read, with the read count it had.
    let read = match record_read(&state, agent.agent.id, id, row.in_count).await {
        Ok(read) => read,
        Err(e) if crate::store::unavailable(&e) => {
            tracing::warn!(error = %e, conversation_id = id, "read not recorded: the store is not taking writes");
            conversations::read_count(pool, agent.agent.id, id).await?
        }
        Err(e) => return Err(e.into()),
    };
    // In the background: the page never waits for LINE.
    super::touches::mark_read_on_open(&state, id);
    let nonce = crate::app::random_token();
    let thread = Thread {
        row: &row,
        messages: &messages,
        has_older,
        nonce: &nonce,
        agents: &agents,
        contact: &contact,
        read,
    };
    if is_htmx(&headers) {
        return Ok(thread_pane(lang, &agent.csrf, &thread).into_response());
    }
    let data = ListData::load(&state, &agent, &filter).await?;
    let list = data.view(&filter, agent.agent.id);
    let shell = shell(lang, &agent, cursor, state.sandbox.is_some());
    Ok(inbox_page(&shell, &list, Some(&thread)).into_response())
}

fn shell<'a>(lang: Lang, agent: &'a Agent, cursor: i64, sandbox: bool) -> Shell<'a> {
    Shell {
        lang,
        title: lang.t(crate::i18n::Msg::Conversations),
        csrf: &agent.csrf,
        agent: Some(&agent.agent.display_name),
        live_cursor: Some(cursor),
        sandbox,
        admin: agent.agent.is_admin(),
    }
}

/// Records that `agent_id` has read conversation `id` up to `in_count`; the count now read.
async fn record_read(state: &AppState, agent_id: i64, id: i64, in_count: i64) -> sqlx::Result<i64> {
    let mut tx = state.store.write().await?;
    let read = conversations::mark_read(&mut tx, agent_id, id, Some(in_count))
        .await?
        .unwrap_or(in_count);
    tx.commit().await?;
    Ok(read)
}

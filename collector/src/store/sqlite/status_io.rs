//! Status page posts, subscribers and their outbox in SQLite.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::core::status_post::{Impact, PostStatus, PostUpdate, StatusPost, Subscriber};
use crate::store::{NotificationOutcome, StoreError, SubscriberChange, SubscriberMessage, SubscriberMessageRow};

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn list_json(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn queue(
    tx: &Transaction<'_>,
    recipients: &[i64],
    item: &str,
    payload: Option<&str>,
    at_ms: i64,
) -> Result<usize, StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO subscriber_messages (subscriber_id, item, status, next_attempt_ms, created_ms, payload)
         VALUES (?1, ?2, 'pending', ?3, ?3, ?4) ON CONFLICT (subscriber_id, item) DO NOTHING",
    )?;
    let mut n = 0;
    for id in recipients {
        n += stmt.execute(params![id, item, at_ms, payload])?;
    }
    Ok(n)
}

fn insert_update(tx: &Transaction<'_>, post_id: i64, u: &PostUpdate) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO status_updates (post_id, status, message, at_ms, author) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![post_id, u.status.as_str(), u.message, u.at_ms, u.by],
    )?;
    Ok(tx.last_insert_rowid())
}

pub fn add_post(conn: &mut Connection, post: &StatusPost, recipients: &[i64]) -> Result<i64, StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO status_posts (title, impact, services_json, incident_id, status, created_ms, resolved_ms, postmortem)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            post.title,
            post.impact.as_str(),
            json_list(&post.services),
            post.incident_id,
            post.status.as_str(),
            post.created_ms,
            post.resolved_ms,
            post.postmortem
        ],
    )?;
    let id = tx.last_insert_rowid();
    for u in &post.updates {
        let update_id = insert_update(&tx, id, u)?;
        queue(&tx, recipients, &format!("update:{id}:{update_id}"), None, u.at_ms)?;
    }
    tx.commit()?;
    Ok(id)
}

pub fn add_post_update(
    conn: &mut Connection,
    post_id: i64,
    u: &PostUpdate,
    recipients: &[i64],
) -> Result<Option<i64>, StoreError> {
    let tx = conn.transaction()?;
    let resolved = (u.status == PostStatus::Resolved).then_some(u.at_ms);
    let changed = tx.execute(
        "UPDATE status_posts SET status = ?2, resolved_ms = CASE WHEN ?3 IS NULL THEN NULL ELSE COALESCE(resolved_ms, ?3) END
         WHERE id = ?1",
        params![post_id, u.status.as_str(), resolved],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    let update_id = insert_update(&tx, post_id, u)?;
    queue(&tx, recipients, &format!("update:{post_id}:{update_id}"), None, u.at_ms)?;
    tx.commit()?;
    Ok(Some(update_id))
}

pub fn set_postmortem(conn: &Connection, post_id: i64, text: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("UPDATE status_posts SET postmortem = ?2 WHERE id = ?1", params![post_id, text])? > 0)
}

fn read_posts(conn: &Connection, ids: &[i64]) -> Result<Vec<StatusPost>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    let mut post_stmt = conn.prepare_cached(
        "SELECT id, title, impact, services_json, incident_id, status, created_ms, resolved_ms, postmortem
         FROM status_posts WHERE id = ?1",
    )?;
    let mut updates_stmt = conn.prepare_cached(
        "SELECT id, status, message, at_ms, author FROM status_updates WHERE post_id = ?1 ORDER BY at_ms, id",
    )?;
    for id in ids {
        let Some(mut post) = post_stmt
            .query_row([id], |r| {
                let impact: String = r.get(2)?;
                let status: String = r.get(5)?;
                Ok(StatusPost {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    impact: Impact::parse(&impact).unwrap_or(Impact::Degraded),
                    services: list_json(&r.get::<_, String>(3)?),
                    incident_id: r.get(4)?,
                    status: PostStatus::parse(&status).unwrap_or(PostStatus::Investigating),
                    created_ms: r.get(6)?,
                    resolved_ms: r.get(7)?,
                    postmortem: r.get(8)?,
                    updates: Vec::new(),
                })
            })
            .optional()?
        else {
            continue;
        };
        post.updates = updates_stmt
            .query_map([id], |r| {
                let status: String = r.get(1)?;
                Ok(PostUpdate {
                    id: r.get(0)?,
                    status: PostStatus::parse(&status).unwrap_or(PostStatus::Investigating),
                    message: r.get(2)?,
                    at_ms: r.get(3)?,
                    by: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        out.push(post);
    }
    Ok(out)
}

pub fn posts(conn: &Connection, between: Option<(i64, i64)>, limit: usize) -> Result<Vec<StatusPost>, StoreError> {
    let (from, to) = between.unwrap_or((i64::MIN, i64::MAX));
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM status_posts WHERE created_ms < ?2 AND (resolved_ms IS NULL OR resolved_ms >= ?1)
             ORDER BY created_ms DESC, id DESC LIMIT ?3",
        )?
        .query_map(params![from, to, limit as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    read_posts(conn, &ids)
}

pub fn post(conn: &Connection, id: i64) -> Result<Option<StatusPost>, StoreError> {
    Ok(read_posts(conn, &[id])?.pop())
}

const SUBSCRIBER_COLUMNS: &str =
    "id, kind, address, services_json, token, created_ms, confirmed_ms, unsubscribed_ms, failed_ms FROM subscribers";

fn subscriber_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscriber> {
    Ok(Subscriber {
        id: r.get(0)?,
        kind: r.get(1)?,
        address: r.get(2)?,
        services: list_json(&r.get::<_, String>(3)?),
        token: r.get(4)?,
        created_ms: r.get(5)?,
        confirmed_ms: r.get(6)?,
        unsubscribed_ms: r.get(7)?,
        failed_ms: r.get(8)?,
    })
}

pub fn add_subscriber(conn: &Connection, s: &Subscriber) -> Result<(i64, bool), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO subscribers (kind, address, services_json, token, created_ms, confirmed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (kind, address) DO NOTHING",
        params![s.kind, s.address, json_list(&s.services), s.token, s.created_ms, s.confirmed_ms],
    )?;
    let id = conn.query_row(
        "SELECT id FROM subscribers WHERE kind = ?1 AND address = ?2",
        params![s.kind, s.address],
        |r| r.get(0),
    )?;
    Ok((id, inserted == 1))
}

pub fn subscriber(conn: &Connection, id: i64) -> Result<Option<Subscriber>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {SUBSCRIBER_COLUMNS} WHERE id = ?1"))?
        .query_row([id], subscriber_row)
        .optional()?)
}

pub fn subscriber_by_token(conn: &Connection, token: &str) -> Result<Option<Subscriber>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {SUBSCRIBER_COLUMNS} WHERE token = ?1"))?
        .query_row([token], subscriber_row)
        .optional()?)
}

pub fn update_subscriber(conn: &Connection, id: i64, change: SubscriberChange, at_ms: i64) -> Result<(), StoreError> {
    let sql = match change {
        SubscriberChange::Confirmed => {
            "UPDATE subscribers SET confirmed_ms = COALESCE(confirmed_ms, ?2), unsubscribed_ms = NULL WHERE id = ?1"
        }
        SubscriberChange::Unsubscribed => {
            "UPDATE subscribers SET unsubscribed_ms = COALESCE(unsubscribed_ms, ?2) WHERE id = ?1"
        }
        SubscriberChange::Failed => "UPDATE subscribers SET failed_ms = ?2 WHERE id = ?1",
    };
    conn.execute(sql, params![id, at_ms])?;
    if change == SubscriberChange::Unsubscribed {
        // Nothing more leaves for it, not even what was already queued.
        conn.execute(
            "UPDATE subscriber_messages SET status = 'suppressed', done_ms = ?2, last_error = 'unsubscribed'
             WHERE subscriber_id = ?1 AND status = 'pending'",
            params![id, at_ms],
        )?;
    }
    Ok(())
}

pub fn subscribers(conn: &Connection) -> Result<Vec<Subscriber>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {SUBSCRIBER_COLUMNS} ORDER BY id"))?
        .query_map([], subscriber_row)?
        .collect::<Result<_, _>>()?)
}

pub fn enqueue(
    conn: &mut Connection,
    recipients: &[i64],
    item: &str,
    payload: Option<&str>,
    at_ms: i64,
) -> Result<usize, StoreError> {
    let tx = conn.transaction()?;
    let n = queue(&tx, recipients, item, payload, at_ms)?;
    tx.commit()?;
    Ok(n)
}

pub fn item_exists(conn: &Connection, item: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM subscriber_messages WHERE item = ?1 LIMIT 1")?
        .query_row([item], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn due(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<SubscriberMessage>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, subscriber_id, item, attempts, created_ms, payload FROM subscriber_messages
             WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2",
        )?
        .query_map(params![now_ms, limit as i64], |r| {
            Ok(SubscriberMessage {
                id: r.get(0)?,
                subscriber_id: r.get(1)?,
                item: r.get(2)?,
                attempts: r.get(3)?,
                created_ms: r.get(4)?,
                payload: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

pub fn record(conn: &Connection, id: i64, outcome: &NotificationOutcome, at_ms: i64) -> Result<(), StoreError> {
    match outcome {
        NotificationOutcome::Delivered | NotificationOutcome::DeliveredAs(_) => conn.execute(
            "UPDATE subscriber_messages SET status = 'delivered', attempts = attempts + 1, done_ms = ?2, last_error = NULL WHERE id = ?1",
            params![id, at_ms],
        )?,
        NotificationOutcome::Suppressed(why) => conn.execute(
            "UPDATE subscriber_messages SET status = 'suppressed', done_ms = ?2, last_error = ?3 WHERE id = ?1",
            params![id, at_ms, why],
        )?,
        NotificationOutcome::Retry { next_attempt_ms, error } => conn.execute(
            "UPDATE subscriber_messages SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3 WHERE id = ?1",
            params![id, next_attempt_ms, error],
        )?,
        NotificationOutcome::Failed(error) => conn.execute(
            "UPDATE subscriber_messages SET status = 'failed', attempts = attempts + 1, done_ms = ?2, last_error = ?3 WHERE id = ?1",
            params![id, at_ms, error],
        )?,
    };
    Ok(())
}

pub fn rows(conn: &Connection, limit: usize) -> Result<Vec<SubscriberMessageRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, subscriber_id, item, status, attempts, created_ms, done_ms, last_error FROM subscriber_messages
             ORDER BY id DESC LIMIT ?1",
        )?
        .query_map([limit as i64], |r| {
            Ok(SubscriberMessageRow {
                id: r.get(0)?,
                subscriber_id: r.get(1)?,
                item: r.get(2)?,
                status: r.get(3)?,
                attempts: r.get(4)?,
                created_ms: r.get(5)?,
                done_ms: r.get(6)?,
                last_error: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

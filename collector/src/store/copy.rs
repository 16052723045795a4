//! `vakt-collector store copy`: moves a site from its SQLite file to PostgreSQL. Every table
//! is copied whole, column by column (the two schemas hold the same tables), in one PostgreSQL
//! transaction: the copy is all there or not at all. The target must hold no data yet; its
//! id sequences continue after the copied ids, so incident numbers stay what people know.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use std::path::Path;

use super::StoreError;

/// The tables in an order that satisfies their references (incidents before what refers to
/// them). `health` and the cluster's tables are each node's own: not copied.
const TABLES: &[&str] = &[
    "agents",
    "batches",
    "local_checks",
    "check_state",
    "check_periods",
    "incidents",
    "incident_events",
    "notifications",
    "rollups",
    "samples",
    "maintenance_windows",
    "silences",
    "status_posts",
    "status_updates",
    "subscribers",
    "subscriber_messages",
];

/// Rows copied, per table, in copy order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub tables: Vec<(String, u64)>,
}

/// One value read from SQLite, typed for its PostgreSQL column.
#[derive(Debug)]
enum Value {
    Int8(Option<i64>),
    Int4(Option<i32>),
    Bool(Option<bool>),
    Float8(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Value {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Value::Int8(v) => v,
            Value::Int4(v) => v,
            Value::Bool(v) => v,
            Value::Float8(v) => v,
            Value::Text(v) => v,
            Value::Bytes(v) => v,
        }
    }
}

fn pg_type(data_type: &str) -> Option<Type> {
    Some(match data_type {
        "bigint" => Type::INT8,
        "integer" => Type::INT4,
        "boolean" => Type::BOOL,
        "double precision" => Type::FLOAT8,
        "text" => Type::TEXT,
        "bytea" => Type::BYTEA,
        _ => return None,
    })
}

fn read(row: &rusqlite::Row<'_>, i: usize, ty: &Type) -> rusqlite::Result<Value> {
    use rusqlite::types::ValueRef;
    let v = row.get_ref(i)?;
    let int = |v: ValueRef<'_>| -> Option<i64> {
        match v {
            ValueRef::Integer(n) => Some(n),
            ValueRef::Real(f) => Some(f as i64),
            ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(|s| s.parse().ok()),
            _ => None,
        }
    };
    Ok(match *ty {
        Type::INT8 => Value::Int8(int(v)),
        Type::INT4 => Value::Int4(int(v).and_then(|n| i32::try_from(n).ok())),
        Type::BOOL => Value::Bool(int(v).map(|n| n != 0)),
        Type::FLOAT8 => Value::Float8(match v {
            ValueRef::Real(f) => Some(f),
            ValueRef::Integer(n) => Some(n as f64),
            _ => None,
        }),
        Type::BYTEA => Value::Bytes(match v {
            ValueRef::Blob(b) | ValueRef::Text(b) => Some(b.to_vec()),
            _ => None,
        }),
        _ => Value::Text(match v {
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(n) => Some(n.to_string()),
            ValueRef::Real(f) => Some(f.to_string()),
            ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
            ValueRef::Null => None,
        }),
    })
}

/// Copies the SQLite store in `data_dir` (brought up to the current schema first) into the
/// PostgreSQL database at `url` (created or migrated to the current schema), which must be
/// empty. The collector on `data_dir` should be stopped: what it writes after the copy began
/// stays behind.
pub fn sqlite_to_postgres(data_dir: &Path, url: &str) -> Result<Copied, StoreError> {
    let path = data_dir.join("vakt.db");
    if !path.exists() {
        return Err(StoreError::Open { path: path.display().to_string(), reason: "no database here to copy".into() });
    }
    drop(super::SqliteStore::open(data_dir)?);
    drop(super::PostgresStore::open(url, 1)?);
    let mut source = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let snapshot = source.transaction()?;
    let mut target = postgres::Client::connect(url, postgres::NoTls)?;
    let mut tx = target.transaction()?;
    for table in TABLES {
        let rows: i64 = tx.query_one(&format!("SELECT count(*) FROM {table}"), &[])?.try_get(0)?;
        if rows > 0 {
            return Err(StoreError::Open {
                path: "the target database".into(),
                reason: format!(
                    "its table {table} holds {rows} rows already: copy into an empty database (nothing is overwritten)"
                ),
            });
        }
    }
    let mut copied = Copied::default();
    for table in TABLES {
        let mut columns: Vec<(String, Type)> = Vec::new();
        for r in tx.query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[table],
        )? {
            let (name, data_type): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let ty = pg_type(&data_type).ok_or_else(|| StoreError::Open {
                path: "the target database".into(),
                reason: format!("{table}.{name} has type {data_type}, which the copy does not know"),
            })?;
            columns.push((name, ty));
        }
        let in_sqlite: Vec<String> = snapshot
            .prepare(&format!("PRAGMA table_info({table})"))?
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<Result<_, _>>()?;
        if let Some(lost) = in_sqlite.iter().find(|c| !columns.iter().any(|(n, _)| n == *c)) {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                reason: format!(
                    "{table}.{lost} has no column in PostgreSQL to go to: is the collector older than the file?"
                ),
            });
        }
        // Columns PostgreSQL has and SQLite does not take their defaults.
        columns.retain(|(n, _)| in_sqlite.contains(n));
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        let types: Vec<Type> = columns.iter().map(|(_, t)| t.clone()).collect();
        let list = names.join(", ");
        let sink = tx.copy_in(&format!("COPY {table} ({list}) FROM STDIN (FORMAT binary)"))?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        let order = if names.contains(&"id") { " ORDER BY id" } else { "" };
        let mut stmt = snapshot.prepare(&format!("SELECT {list} FROM {table}{order}"))?;
        let mut rows = stmt.query([])?;
        let mut n = 0u64;
        while let Some(row) = rows.next()? {
            let values: Vec<Value> =
                types.iter().enumerate().map(|(i, t)| read(row, i, t)).collect::<Result<_, _>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(Value::as_sql).collect();
            writer.write(&refs)?;
            n += 1;
        }
        writer.finish()?;
        if names.contains(&"id") {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
                ),
                &[],
            )?;
        }
        copied.tables.push((table.to_string(), n));
    }
    tx.commit()?;
    Ok(copied)
}

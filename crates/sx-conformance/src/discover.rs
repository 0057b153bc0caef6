//! Finding test files and splitting them into batches.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Topic name of files that sit directly in the conformance root.
pub const ROOT_TOPIC: &str = "(root)";

/// One conformance test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFile {
    /// Path handed to `sx test` (root joined with `rel`).
    pub path: PathBuf,
    /// Path relative to the conformance root with `/` separators; used in ids and reports.
    pub rel: String,
    /// First directory under the root (or [`ROOT_TOPIC`]).
    pub topic: String,
}

impl TestFile {
    pub fn new(root: &Path, rel: &str) -> TestFile {
        let topic = match rel.split_once('/') {
            Some((first, _)) => first.to_string(),
            None => ROOT_TOPIC.to_string(),
        };
        TestFile {
            path: root.join(rel),
            rel: rel.to_string(),
            topic,
        }
    }
}

/// All `*.sx` files under `root` (recursively, skipping hidden entries), sorted
/// by relative path; with `filter`, only those whose path contains it.
pub fn discover(root: &Path, filter: Option<&str>) -> Result<Vec<TestFile>> {
    let mut rels = Vec::new();
    walk(root, "", &mut rels)
        .with_context(|| format!("cannot read conformance directory {}", root.display()))?;
    rels.sort();
    let files = rels
        .iter()
        .map(|rel| TestFile::new(root, rel))
        .filter(|f| match filter {
            Some(s) => f.rel.contains(s) || f.path.to_string_lossy().contains(s),
            None => true,
        })
        .collect();
    Ok(files)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue; // non-UTF-8 names cannot be test ids
        };
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let file_type = entry
            .file_type()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        let is_dir = if file_type.is_symlink() {
            entry.path().is_dir()
        } else {
            file_type.is_dir()
        };
        if is_dir {
            walk(&entry.path(), &rel, out)?;
        } else if name.ends_with(".sx") {
            out.push(rel);
        }
    }
    Ok(())
}

/// Split `items` into contiguous batches of at most `max_size` items, with
/// sizes as even as possible (10 items, max 8 → 5 + 5, not 8 + 2).
pub fn make_batches<T: Clone>(items: &[T], max_size: usize) -> Vec<Vec<T>> {
    if items.is_empty() {
        return Vec::new();
    }
    let max_size = max_size.max(1);
    let count = items.len().div_ceil(max_size);
    let base = items.len() / count;
    let extra = items.len() % count;
    let mut batches = Vec::with_capacity(count);
    let mut start = 0;
    for i in 0..count {
        let size = base + usize::from(i < extra);
        batches.push(items[start..start + size].to_vec());
        start += size;
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_even_and_bounded() {
        let items: Vec<u32> = (0..10).collect();
        let b = make_batches(&items, 8);
        assert_eq!(b, vec![vec![0, 1, 2, 3, 4], vec![5, 6, 7, 8, 9]]);

        let b = make_batches(&items, 3);
        assert_eq!(b.len(), 4);
        assert!(b.iter().all(|x| x.len() <= 3 && x.len() >= 2));
        assert_eq!(b.concat(), items);

        let b = make_batches(&items, 10);
        assert_eq!(b, vec![items.clone()]);

        let b = make_batches(&items, 100);
        assert_eq!(b.len(), 1);

        let b = make_batches(&items, 1);
        assert_eq!(b.len(), 10);
    }

    #[test]
    fn batches_edge_cases() {
        let empty: Vec<u32> = Vec::new();
        assert!(make_batches(&empty, 8).is_empty());
        // size 0 is treated as 1 rather than looping forever
        assert_eq!(make_batches(&[1, 2], 0), vec![vec![1], vec![2]]);
        // every size keeps order and covers all items
        let items: Vec<u32> = (0..37).collect();
        for size in 1..40 {
            let b = make_batches(&items, size);
            assert_eq!(b.concat(), items, "size {size}");
            assert!(b.iter().all(|x| !x.is_empty() && x.len() <= size));
            let min = b.iter().map(Vec::len).min().unwrap_or(0);
            let max = b.iter().map(Vec::len).max().unwrap_or(0);
            assert!(max - min <= 1, "size {size}: uneven {min}..{max}");
        }
    }

    #[test]
    fn discovery_topics_filter_and_order() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        for rel in [
            "lists/basic.sx",
            "lists/nested/deep.sx",
            "arith/ops.sx",
            "arith/notes.md",
            "top.sx",
            ".hidden/x.sx",
            "lists/.swap.sx",
        ] {
            let p = root.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&p, "")?;
        }
        let files = discover(root, None)?;
        let rels: Vec<_> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            rels,
            vec![
                "arith/ops.sx",
                "lists/basic.sx",
                "lists/nested/deep.sx",
                "top.sx"
            ]
        );
        let topics: Vec<_> = files.iter().map(|f| f.topic.as_str()).collect();
        assert_eq!(topics, vec!["arith", "lists", "lists", ROOT_TOPIC]);
        assert_eq!(files[0].path, root.join("arith/ops.sx"));

        let filtered = discover(root, Some("lists/"))?;
        assert_eq!(filtered.len(), 2);
        let none = discover(root, Some("zzz"))?;
        assert!(none.is_empty());
        assert!(discover(&root.join("missing"), None).is_err());
        Ok(())
    }
}

//! The project's Markdown renders as written: every fenced code block in
//! README.md, FORMAT.md and the other docs of the repository closes.
//!
//! A closing fence is a line of the same fence character, at least as long
//! as the opening one, with nothing but spaces after it (CommonMark). A line
//! such as "``` text" inside a block does not close it, so GitHub renders the
//! rest of the file inside out; this test names the line.

use std::path::{Path, PathBuf};

/// The first unclosed or wrongly closed fence in `text`, as a message.
fn fence_problem(text: &str) -> Option<String> {
    // (line number, fence character, fence length) of the open block.
    let mut open: Option<(usize, char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 {
            continue;
        }
        let rest = &line[indent..];
        let Some(c) = rest.chars().next().filter(|c| *c == '`' || *c == '~') else {
            continue;
        };
        let len = rest.chars().take_while(|x| *x == c).count();
        if len < 3 {
            continue;
        }
        let after = &rest[len..];
        match open {
            None => {
                // An info string of a backtick fence may not hold a backtick.
                if c == '`' && after.contains('`') {
                    continue;
                }
                open = Some((n, c, len));
            }
            Some((at, oc, olen)) if oc == c && len >= olen => {
                if after.trim().is_empty() {
                    open = None;
                } else {
                    return Some(format!(
                        "line {n}: text after the fence, so it does not close the block opened at line {at}"
                    ));
                }
            }
            Some(_) => {}
        }
    }
    open.map(|(at, _, _)| format!("line {at}: a code block that never closes"))
}

/// Every `.md` file of the repository, outside build output and packages.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

#[test]
fn every_code_block_in_the_docs_closes() {
    let mut files = Vec::new();
    markdown_files(Path::new(env!("CARGO_MANIFEST_DIR")), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("README.md"))
            && files.iter().any(|f| f.ends_with("FORMAT.md")),
        "README.md and FORMAT.md were not found: {files:?}"
    );
    let problems: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            fence_problem(&text).map(|p| format!("{}: {p}", f.display()))
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_fence_check_finds_text_after_a_closing_fence_and_an_unclosed_block() {
    assert_eq!(fence_problem("a\n```sh\nx\n```\nb\n"), None);
    assert_eq!(fence_problem("````\n```\n````\n"), None);
    assert_eq!(fence_problem("use `x` and ```y``` inline\n"), None);
    assert_eq!(
        fence_problem("```text\nx\n``` more words\n"),
        Some(
            "line 3: text after the fence, so it does not close the block opened at line 1".into()
        )
    );
    assert_eq!(
        fence_problem("ok\n```\nnever closed\n"),
        Some("line 2: a code block that never closes".into())
    );
}

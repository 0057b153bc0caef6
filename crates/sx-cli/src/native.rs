//! The native reference for `sx bench --native NAME`: the same algorithms
//! as `benches/fib.sx` and `benches/tak.sx` in Rust, timed by the same loop
//! as SX (`--iterations` after `--warmup`), so the bench table can show how
//! close compiled SX comes to native code.

use std::hint::black_box;
use std::time::Instant;

fn fib(n: i64) -> i64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

fn tak(x: i64, y: i64, z: i64) -> i64 {
    if y < x {
        tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y))
    } else {
        z
    }
}

/// Times of the native version of benchmark `name` and its result, if there
/// is one.
pub fn measure(name: &str, iterations: usize, warmup: usize) -> Option<(Vec<f64>, String)> {
    let run: fn() -> i64 = match name {
        "fib" => || fib(black_box(30)),
        "tak" => || tak(black_box(18), black_box(12), black_box(6)),
        _ => return None,
    };
    let mut result = 0;
    for _ in 0..warmup {
        result = black_box(run());
    }
    let mut times = Vec::new();
    for _ in 0..iterations {
        let t = Instant::now();
        result = black_box(run());
        times.push(t.elapsed().as_secs_f64());
    }
    Some((times, result.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_native_versions_compute_what_the_sx_ones_do() {
        assert_eq!(super::measure("fib", 1, 0).map(|m| m.1), Some("832040".into()));
        assert_eq!(super::measure("tak", 1, 0).map(|m| m.1), Some("7".into()));
        assert!(super::measure("strings", 1, 0).is_none());
    }
}

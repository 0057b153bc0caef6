//! An embedder (or the REPL's Ctrl-C handler) can interrupt a running
//! program from another thread; the program sees a catchable error.

use std::sync::atomic::Ordering;
use std::time::Duration;

#[test]
fn an_endless_loop_is_interrupted_from_another_thread() {
    let mut e = sx::Engine::new();
    let flag = e.interrupt_handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        flag.store(true, Ordering::Relaxed);
    });
    let r = e.eval_str("(let loop ((i 0)) (loop (+ i 1)))", "loop.sx");
    t.join().expect("timer thread");
    let err = r.expect_err("the loop must be interrupted");
    assert_eq!(err.message(), "Interrupted");
    // The engine keeps working afterwards.
    assert_eq!(e.eval_to_string("(+ 1 2)").expect("still usable"), "3");
}

#[test]
fn an_interrupt_is_catchable() {
    let mut e = sx::Engine::new();
    let flag = e.interrupt_handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        flag.store(true, Ordering::Relaxed);
    });
    let r = e.eval_to_string("(get (try-call (fn () (let loop ((i 0)) (loop (+ i 1))))) :error)");
    t.join().expect("timer thread");
    assert_eq!(r.expect("caught"), "\"Interrupted\"");
}

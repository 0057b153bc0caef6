#[test]
fn engine_speed() {
    let t = std::time::Instant::now();
    for _ in 0..20 { let _e = sx::Engine::new(); }
    eprintln!("20 engines: {:?}", t.elapsed());
    let mut e = sx::Engine::new();
    let t = std::time::Instant::now();
    for i in 0..1000 { let _ = e.eval_str(&format!("(let ((x {i})) (map (fn (y) (+ x y)) (list 1 2 3)))"), "f.sx"); }
    eprintln!("1000 evals: {:?}", t.elapsed());
}

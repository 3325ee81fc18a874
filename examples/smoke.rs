use std::time::{Duration, Instant};
fn main() {
    let t = Instant::now();
    let gs: Vec<_> = (0..100)
        .map(|i| {
            greenrt::spawn(move || {
                greenrt::sleep(Duration::from_millis(100));
                i
            })
        })
        .collect();
    greenrt::joinall(&gs, None).unwrap();
    println!(
        "100 sleeps: {:?} sum={}",
        t.elapsed(),
        gs.iter().map(|g| g.get().unwrap()).sum::<i32>()
    );
    let g = greenrt::spawn(|| {
        greenrt::sleep(Duration::from_secs(10));
        1
    });
    greenrt::sleep(Duration::from_millis(10));
    g.kill();
    println!(
        "killed: {:?} {:?} succ={}",
        g.get(),
        g.exception(),
        g.successful()
    );
    let g = greenrt::Builder::new()
        .name("boom")
        .spawn(|| -> i32 { panic!("kaboom") })
        .unwrap();
    println!("panic: {:?}", g.get());
    let r = greenrt::with_timeout(Duration::from_millis(20), || {
        greenrt::sleep(Duration::from_secs(3))
    });
    println!("timeout: {:?}", r);
    let g = greenrt::spawn(|| {
        let g2 = greenrt::spawn(|| 5);
        g2.get().unwrap()
    });
    println!("nested: {:?}", g.get());
    let g = greenrt::spawn(move || loop {
        greenrt::sleep(Duration::from_secs(1000))
    });
    g.kill();
    let n = 100_000;
    let t = Instant::now();
    let gs: Vec<_> = (0..n).map(|i| greenrt::spawn(move || i)).collect();
    greenrt::joinall(&gs, None).unwrap();
    println!(
        "100k spawn+join {:?} stacks={}",
        t.elapsed(),
        greenrt::mapped_stacks()
    );
    let t = Instant::now();
    let a = greenrt::spawn(|| {
        for _ in 0..1_000_000 {
            greenrt::yield_now()
        }
    });
    let b = greenrt::spawn(|| {
        for _ in 0..1_000_000 {
            greenrt::yield_now()
        }
    });
    a.join().unwrap();
    b.join().unwrap();
    println!(
        "2M yields {:?} -> {:?}/switch",
        t.elapsed(),
        t.elapsed() / 2_000_000
    );
}

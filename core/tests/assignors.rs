//! Property tests of the partition assignors: random topics (1–6, with 1–16
//! partitions), random members (1–8) with random subscriptions and owned
//! partitions.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use odradek_core::TopicPartition;
use odradek_core::group::assignor::{
    CooperativeStickyAssignor, MemberSubscription, PartitionAssignor, RangeAssignor,
    RoundRobinAssignor, StickyAssignor,
};
use proptest::prelude::*;

type Plain = BTreeMap<String, Vec<TopicPartition>>;

/// One generated group.
#[derive(Debug, Clone)]
struct Group {
    /// Topic → partition count, as the metadata has it.
    partitions: BTreeMap<String, i32>,
    members: Vec<MemberSubscription>,
}

const TOPICS: [&str; 6] = ["t0", "t1", "t2", "t3", "t4", "t5"];

fn topic_counts() -> impl Strategy<Value = Vec<i32>> {
    prop::collection::vec(1..=16i32, 1..=6)
}

/// Member ids in a random order relative to the member index; some members
/// are static.
fn member_ids(n: usize) -> impl Strategy<Value = Vec<(String, Option<String>)>> {
    prop::collection::vec((0u32..1000, prop::option::of(0u32..1000)), n).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (tag, instance))| {
                (
                    format!("{tag:03}-m{i}"),
                    instance.map(|x| format!("i{x:03}-{i}")),
                )
            })
            .collect()
    })
}

fn subscription(topics: usize, mask: u32, unknown: bool) -> Vec<String> {
    let mut v: Vec<String> = (0..topics)
        .filter(|t| mask & (1 << t) != 0)
        .map(|t| TOPICS[t].to_owned())
        .collect();
    if unknown {
        // A topic the metadata does not know.
        v.push("missing".to_owned());
    }
    v
}

fn base_member(id: String, instance: Option<String>, topics: Vec<String>) -> MemberSubscription {
    MemberSubscription {
        member_id: id,
        group_instance_id: instance,
        topics,
        owned_partitions: Vec::new(),
        generation: -1,
        rack_id: None,
        user_data: None,
    }
}

/// Members with random subscriptions and no owned partitions. `uniform`
/// gives everyone the same subscription.
fn group(uniform: bool) -> impl Strategy<Value = Group> {
    (topic_counts(), 1usize..=8).prop_flat_map(move |(counts, n)| {
        let t = counts.len();
        let masks = prop::collection::vec((0u32..(1 << t), any::<bool>()), n);
        (Just(counts), member_ids(n), masks, 0u32..(1 << t)).prop_map(
            move |(counts, ids, masks, shared)| {
                let partitions = TOPICS
                    .iter()
                    .zip(&counts)
                    .map(|(t, &c)| ((*t).to_owned(), c))
                    .collect();
                let members = ids
                    .into_iter()
                    .zip(masks)
                    .map(|((id, instance), (mask, unknown))| {
                        let topics = if uniform {
                            subscription(t, shared.max(1), false)
                        } else {
                            subscription(t, mask, unknown)
                        };
                        base_member(id, instance, topics)
                    })
                    .collect();
                Group {
                    partitions,
                    members,
                }
            },
        )
    })
}

/// A group whose members also claim random partitions (some of topics
/// they do not subscribe to, some past the topic's count) from random
/// generations.
fn group_with_claims(uniform: bool) -> impl Strategy<Value = Group> {
    group(uniform).prop_flat_map(|g| {
        let n = g.members.len();
        let claims = prop::collection::vec(
            (
                prop::collection::vec((0usize..6, 0i32..18), 0..24),
                -1i32..4,
            ),
            n,
        );
        (Just(g), claims).prop_map(|(mut g, claims)| {
            for (m, (owned, generation)) in g.members.iter_mut().zip(claims) {
                m.owned_partitions = owned
                    .into_iter()
                    .map(|(t, p)| TopicPartition::new(TOPICS[t], p))
                    .collect();
                m.generation = generation;
            }
            g
        })
    })
}

fn run(a: &dyn PartitionAssignor, g: &Group) -> Plain {
    let result = a.assign(&g.partitions, &g.members).expect("assign");
    assert_eq!(
        result.keys().cloned().collect::<BTreeSet<_>>(),
        g.members
            .iter()
            .map(|m| m.member_id.clone())
            .collect::<BTreeSet<_>>(),
        "every member has an entry"
    );
    result.into_iter().map(|(m, a)| (m, a.partitions)).collect()
}

/// The partitions some member subscribes to.
fn expected_partitions(g: &Group) -> BTreeSet<TopicPartition> {
    let subscribed: BTreeSet<&str> = g
        .members
        .iter()
        .flat_map(|m| m.topics.iter().map(String::as_str))
        .collect();
    g.partitions
        .iter()
        .filter(|(t, _)| subscribed.contains(t.as_str()))
        .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t.as_str(), p)))
        .collect()
}

/// Each assigned partition goes to one member that subscribes to its topic
/// and is a real partition of a subscribed topic. Returns the assigned set.
fn check_assigned_once(g: &Group, result: &Plain) -> BTreeSet<TopicPartition> {
    let expected = expected_partitions(g);
    let mut seen = BTreeSet::new();
    for m in &g.members {
        for tp in &result[&m.member_id] {
            assert!(
                m.topics.iter().any(|t| t == tp.topic()),
                "{} got {tp} without subscribing",
                m.member_id
            );
            assert!(expected.contains(tp), "{tp} is not a subscribed partition");
            assert!(seen.insert(tp.clone()), "{tp} assigned twice");
        }
    }
    seen
}

fn check_valid(g: &Group, result: &Plain) {
    let seen = check_assigned_once(g, result);
    assert_eq!(seen, expected_partitions(g), "every partition is assigned");
}

fn spread(result: &Plain) -> usize {
    let max = result.values().map(Vec::len).max().unwrap_or(0);
    let min = result.values().map(Vec::len).min().unwrap_or(0);
    max - min
}

/// No chain of hand-overs leads from a member to one with two partitions
/// fewer: the assignment is as balanced as the subscriptions allow.
fn check_optimal_balance(g: &Group, result: &Plain) {
    let members = &g.members;
    let load: Vec<usize> = members.iter().map(|m| result[&m.member_id].len()).collect();
    for s in 0..members.len() {
        let mut seen = vec![false; members.len()];
        seen[s] = true;
        let mut queue = VecDeque::from([s]);
        while let Some(u) = queue.pop_front() {
            assert!(
                load[u] + 2 > load[s],
                "{} ({}) can hand partitions on to {} ({})",
                members[s].member_id,
                load[s],
                members[u].member_id,
                load[u]
            );
            for (v, m) in members.iter().enumerate() {
                if !seen[v]
                    && result[&members[u].member_id]
                        .iter()
                        .any(|tp| m.topics.iter().any(|t| t == tp.topic()))
                {
                    seen[v] = true;
                    queue.push_back(v);
                }
            }
        }
    }
}

/// Per partition, the members claiming it at the highest generation among
/// its claims.
fn top_claimants(g: &Group) -> BTreeMap<TopicPartition, BTreeSet<String>> {
    let mut best: BTreeMap<TopicPartition, (i32, BTreeSet<String>)> = BTreeMap::new();
    for m in &g.members {
        for tp in m.owned_partitions.iter().collect::<BTreeSet<_>>() {
            let entry = best
                .entry(tp.clone())
                .or_insert_with(|| (m.generation, BTreeSet::new()));
            if m.generation > entry.0 {
                *entry = (m.generation, BTreeSet::new());
            }
            if m.generation == entry.0 {
                entry.1.insert(m.member_id.clone());
            }
        }
    }
    best.into_iter().map(|(tp, (_, ms))| (tp, ms)).collect()
}

/// The partitions each member may keep: those it alone claims at the
/// highest generation, of topics it still subscribes to.
fn valid_owned(g: &Group) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let expected = expected_partitions(g);
    let mut owned: BTreeMap<String, BTreeSet<TopicPartition>> = g
        .members
        .iter()
        .map(|m| (m.member_id.clone(), BTreeSet::new()))
        .collect();
    for (tp, claimants) in top_claimants(g) {
        if claimants.len() != 1 || !expected.contains(&tp) {
            continue;
        }
        let Some(id) = claimants.into_iter().next() else {
            continue;
        };
        let m = g
            .members
            .iter()
            .find(|m| m.member_id == id)
            .expect("member");
        if m.topics.iter().any(|t| t == tp.topic()) {
            owned.entry(id).or_default().insert(tp);
        }
    }
    owned
}

/// The most owned partitions any balanced assignment can leave in place
/// when all members subscribe to the same topics: `total % n` members may
/// keep `total / n + 1`, best given to those owning most.
fn max_kept_uniform(owned: &[usize], total: usize) -> usize {
    let n = owned.len();
    let (quota, extra) = (total / n, total % n);
    let mut sorted = owned.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted
        .iter()
        .enumerate()
        .map(|(i, &o)| o.min(quota + usize::from(i < extra)))
        .sum()
}

fn next_generation(g: &Group, result: &Plain, generation: i32) -> Group {
    Group {
        partitions: g.partitions.clone(),
        members: g
            .members
            .iter()
            .map(|m| MemberSubscription {
                owned_partitions: result[&m.member_id].clone(),
                generation,
                ..m.clone()
            })
            .collect(),
    }
}

fn max_generation(g: &Group) -> i32 {
    g.members.iter().map(|m| m.generation).max().unwrap_or(-1)
}

/// Checks one cooperative round and returns its result.
fn check_cooperative_round(g: &Group) -> Plain {
    let result = run(&CooperativeStickyAssignor, g);
    let assigned = check_assigned_once(g, &result);
    let claimants = top_claimants(g);
    // Nobody gets a partition another member claims at the top generation.
    for (member, partitions) in &result {
        for tp in partitions {
            if let Some(cs) = claimants.get(tp) {
                assert!(
                    cs.iter().all(|c| c == member),
                    "{member} got {tp}, which {cs:?} still claim"
                );
            }
        }
    }
    // A partition is held back only while someone claims it.
    for tp in expected_partitions(g).difference(&assigned) {
        assert!(
            claimants.contains_key(tp),
            "{tp} withheld but nobody holds it"
        );
    }
    result
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 192,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_assignor_is_valid(g in group(false)) {
        for a in [&RangeAssignor as &dyn PartitionAssignor, &RoundRobinAssignor, &StickyAssignor] {
            let result = run(a, &g);
            check_valid(&g, &result);
            // Deterministic, whatever the input order.
            let mut reversed = g.clone();
            reversed.members.reverse();
            prop_assert_eq!(&result, &run(a, &reversed));
        }
        // Without owned partitions nothing is held back.
        check_valid(&g, &run(&CooperativeStickyAssignor, &g));
    }

    #[test]
    fn uniform_subscriptions_are_balanced(g in group(true)) {
        for a in [&RoundRobinAssignor as &dyn PartitionAssignor, &StickyAssignor, &CooperativeStickyAssignor] {
            let result = run(a, &g);
            check_valid(&g, &result);
            prop_assert!(spread(&result) <= 1, "{}: {:?}", a.name(), result);
        }
    }

    #[test]
    fn sticky_is_optimally_balanced(g in group_with_claims(false)) {
        let result = run(&StickyAssignor, &g);
        check_valid(&g, &result);
        check_optimal_balance(&g, &result);
    }

    #[test]
    fn sticky_keeps_the_most_owned_partitions(g in group_with_claims(true)) {
        let result = run(&StickyAssignor, &g);
        check_valid(&g, &result);
        prop_assert!(spread(&result) <= 1);
        let owned = valid_owned(&g);
        let kept: usize = owned
            .iter()
            .map(|(m, tps)| result[m].iter().filter(|tp| tps.contains(tp)).count())
            .sum();
        let counts: Vec<usize> = g.members.iter().map(|m| owned[&m.member_id].len()).collect();
        let total = expected_partitions(&g).len();
        prop_assert_eq!(kept, max_kept_uniform(&counts, total));
    }

    #[test]
    fn sticky_leave_moves_only_the_leavers_partitions(
        g in group(true),
        leaver in any::<prop::sample::Index>(),
    ) {
        prop_assume!(g.members.len() >= 2);
        let r1 = run(&StickyAssignor, &g);
        let mut g2 = next_generation(&g, &r1, 1);
        let gone = g2.members.remove(leaver.index(g2.members.len()));
        let r2 = run(&StickyAssignor, &g2);
        check_valid(&g2, &r2);
        prop_assert!(spread(&r2) <= 1);
        for m in &g2.members {
            for tp in &r1[&m.member_id] {
                prop_assert!(r2[&m.member_id].contains(tp), "{} lost {}", m.member_id, tp);
            }
        }
        // The leaver's partitions went to the others.
        let moved: usize = r1[&gone.member_id].len();
        let gained: usize = g2
            .members
            .iter()
            .map(|m| r2[&m.member_id].len() - r1[&m.member_id].len())
            .sum();
        prop_assert_eq!(moved, gained);
    }

    #[test]
    fn sticky_join_moves_the_minimum(g in group(true)) {
        let r1 = run(&StickyAssignor, &g);
        let mut g2 = next_generation(&g, &r1, 1);
        let topics = g2.members[0].topics.clone();
        let mut joiner = base_member("zz-joiner".to_owned(), None, topics);
        joiner.generation = 1;
        g2.members.push(joiner);
        let r2 = run(&StickyAssignor, &g2);
        check_valid(&g2, &r2);
        prop_assert!(spread(&r2) <= 1);
        let owned: Vec<usize> = g2.members.iter().map(|m| m.owned_partitions.len()).collect();
        let total = expected_partitions(&g2).len();
        let minimum = total - max_kept_uniform(&owned, total);
        let moved: usize = g
            .members
            .iter()
            .map(|m| r1[&m.member_id].iter().filter(|tp| !r2[&m.member_id].contains(tp)).count())
            .sum();
        prop_assert_eq!(moved, minimum);
    }

    #[test]
    fn cooperative_never_hands_over_within_a_generation(g in group_with_claims(false)) {
        let r1 = check_cooperative_round(&g);
        // Members revoke what they lost and rejoin with what they kept:
        // the follow-up rebalance assigns everything.
        let g2 = next_generation(&g, &r1, max_generation(&g) + 1);
        let r2 = check_cooperative_round(&g2);
        check_valid(&g2, &r2);
        // And it matches the eager sticky target for that input.
        prop_assert_eq!(&r2, &run(&StickyAssignor, &g2));
    }

    #[test]
    fn cooperative_converges_to_balance(g in group_with_claims(true)) {
        let r1 = check_cooperative_round(&g);
        let g2 = next_generation(&g, &r1, max_generation(&g) + 1);
        let r2 = check_cooperative_round(&g2);
        check_valid(&g2, &r2);
        prop_assert!(spread(&r2) <= 1);
    }
}

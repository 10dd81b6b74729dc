//! The consumer's view of the cluster: brokers, the leader and leader epoch
//! of each partition it cares about, and when to refresh that view.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backoff::{Backoff, Retry};
use crate::protocol::messages::{
    MetadataRequest, MetadataResponse, metadata::MetadataRequestTopic,
};
use crate::protocol::{ErrorCode, Uuid};
use crate::timer::{Timer, TimerTable};
use crate::types::{BrokerAddress, BrokerId, TopicPartition};

/// A partition's leader as metadata last described it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leader {
    pub(crate) broker: BrokerId,
    /// Known from Metadata v7+; used to fence stale fetches.
    pub(crate) epoch: Option<i32>,
}

#[derive(Debug, Clone, Default)]
struct TopicState {
    id: Uuid,
    error: ErrorCode,
    partitions: HashMap<i32, PartitionState>,
}

#[derive(Debug, Clone, Copy)]
struct PartitionState {
    leader: Option<BrokerId>,
    epoch: Option<i32>,
}

/// What a refresh told us about the topics we asked for.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Topics or partitions that exist but have no usable leader yet, or are
    /// unknown: refresh again after a backoff.
    pub(crate) incomplete: bool,
    /// Non-retriable topic errors (e.g. authorization).
    pub(crate) topic_errors: Vec<(Arc<str>, ErrorCode)>,
    /// Every topic the cluster listed (internal ones only with
    /// `exclude.internal.topics=false`), when the refresh asked for all
    /// topics (a pattern subscription).
    pub(crate) listed_topics: Option<BTreeSet<Arc<str>>>,
}

#[derive(Debug)]
pub(crate) struct Metadata {
    brokers: BTreeMap<BrokerId, BrokerAddress>,
    topics: HashMap<Arc<str>, TopicState>,
    wanted: BTreeSet<Arc<str>>,
    wanted_partitions: BTreeSet<TopicPartition>,
    /// Whole topics wanted besides those of `wanted_partitions` (a group's
    /// subscriptions, whose partition counts matter).
    wanted_topics: BTreeSet<Arc<str>>,
    /// Ask for every topic in the cluster (a pattern subscription).
    all_topics: bool,
    max_age: Duration,
    /// A refresh was asked for (new topics, a stale leader, its age).
    requested: bool,
    retry: Retry,
    /// `allow.auto.create.topics`: a broker that auto-creates topics may
    /// create the ones this consumer asks about.
    allow_auto_create: bool,
    /// `exclude.internal.topics`: a pattern never matches internal topics
    /// (`__consumer_offsets`, `__transaction_state`).
    exclude_internal: bool,
    /// Bumped whenever a leader may have changed, so callers can keep a
    /// partition's leader and look it up again only after a change.
    generation: u64,
}

impl Metadata {
    pub(crate) fn new(max_age: Duration, allow_auto_create: bool, exclude_internal: bool) -> Self {
        Self {
            allow_auto_create,
            exclude_internal,
            brokers: BTreeMap::new(),
            topics: HashMap::new(),
            wanted: BTreeSet::new(),
            wanted_partitions: BTreeSet::new(),
            wanted_topics: BTreeSet::new(),
            all_topics: false,
            max_age,
            requested: true,
            retry: Retry::new(Timer::MetadataRetry),
            generation: 0,
        }
    }

    /// Sets the partitions the consumer needs (assigned ones and those of
    /// pending offset queries); any not yet described triggers a refresh.
    pub(crate) fn set_wanted(&mut self, partitions: BTreeSet<TopicPartition>) {
        if partitions.iter().any(|tp| self.leader(tp).is_none()) {
            self.requested = true;
        }
        self.wanted_partitions = partitions;
        self.update_wanted();
    }

    /// Sets the whole topics the consumer needs described (subscriptions);
    /// any not yet described triggers a refresh.
    pub(crate) fn set_wanted_topics(&mut self, topics: BTreeSet<Arc<str>>) {
        if topics.iter().any(|t| !self.topics.contains_key(t)) {
            self.requested = true;
        }
        self.wanted_topics = topics;
        self.update_wanted();
    }

    /// Asks every refresh for all topics (or stops doing so); turning it
    /// on refreshes at once.
    pub(crate) fn set_all_topics(&mut self, all: bool) {
        if all && !self.all_topics {
            self.requested = true;
        }
        self.all_topics = all;
    }

    fn update_wanted(&mut self) {
        let mut topics: BTreeSet<Arc<str>> = self
            .wanted_partitions
            .iter()
            .map(|tp| tp.topic_arc().clone())
            .collect();
        topics.extend(self.wanted_topics.iter().cloned());
        self.wanted = topics;
    }

    /// The number of partitions of `topic`: `Some(0)` for a topic the
    /// cluster reported as failed or absent, `None` until it is described.
    pub(crate) fn partition_count(&self, topic: &str) -> Option<usize> {
        let state = self.topics.get(topic)?;
        Some(if state.error.is_ok() {
            state.partitions.len()
        } else {
            0
        })
    }

    /// Asks for a refresh as soon as backoff allows (a leader moved, a
    /// partition was unknown, ...).
    pub(crate) fn request_update(&mut self) {
        self.requested = true;
    }

    /// True when a refresh should go out: one was asked for, none is in
    /// flight and the last one's backoff is over.
    pub(crate) fn is_due(&self, timers: &TimerTable) -> bool {
        self.requested && self.retry.ready(timers)
    }

    /// The request to send, marking a refresh as in flight.
    pub(crate) fn begin_update(&mut self) -> MetadataRequest {
        self.retry.sent();
        self.requested = false;
        // A null topic list asks for every topic.
        let topics = (!self.all_topics).then(|| {
            self.wanted
                .iter()
                .map(|name| MetadataRequestTopic {
                    name: Some(name.to_string()),
                    ..Default::default()
                })
                .collect()
        });
        MetadataRequest {
            topics,
            allow_auto_topic_creation: self.allow_auto_create,
            ..Default::default()
        }
    }

    /// The refresh got no answer: try again after a backoff.
    pub(crate) fn update_failed(
        &mut self,
        now: Instant,
        backoff: &mut Backoff,
        timers: &mut TimerTable,
    ) {
        self.requested = true;
        self.retry.failed(now, backoff, timers);
    }

    /// Applies a Metadata response.
    pub(crate) fn apply(
        &mut self,
        response: &MetadataResponse,
        now: Instant,
        backoff: &mut Backoff,
        timers: &mut TimerTable,
    ) -> Applied {
        self.retry.settled();
        self.generation += 1;
        timers.set(Timer::MetadataRefresh, now + self.max_age);
        if !response.brokers.is_empty() {
            self.brokers = response
                .brokers
                .iter()
                .filter_map(|b| {
                    Some((
                        BrokerId(b.node_id),
                        BrokerAddress::new(b.host.clone(), u16::try_from(b.port).ok()?),
                    ))
                })
                .collect();
        }
        let mut applied = Applied::default();
        let mut listed = BTreeSet::new();
        for topic in &response.topics {
            let Some(name) = topic.name.as_deref() else {
                continue;
            };
            let key = match self.wanted.get(name) {
                Some(key) => key.clone(),
                None if self.all_topics => Arc::from(name),
                None => continue,
            };
            let excluded = topic.is_internal && self.exclude_internal;
            if self.all_topics && !excluded && ErrorCode(topic.error_code).is_ok() {
                listed.insert(key.clone());
            }
            let code = ErrorCode(topic.error_code);
            let previous = self.topics.remove(&key).unwrap_or_default();
            let mut state = TopicState {
                id: topic.topic_id,
                error: code,
                partitions: HashMap::new(),
            };
            if !code.is_ok() {
                if code.is_retriable() {
                    applied.incomplete = true;
                } else {
                    applied.topic_errors.push((key.clone(), code));
                }
            }
            for p in &topic.partitions {
                let epoch = (p.leader_epoch >= 0).then_some(p.leader_epoch);
                let old = previous.partitions.get(&p.partition_index);
                // Never go back to an older leader epoch: a lagging broker's
                // metadata must not undo a newer view.
                if let (Some(old), Some(new_epoch)) = (old, epoch) {
                    if old.epoch.is_some_and(|e| e > new_epoch) {
                        state.partitions.insert(p.partition_index, *old);
                        continue;
                    }
                }
                let leader = BrokerId(p.leader_id);
                let leader =
                    (p.leader_id >= 0 && self.brokers.contains_key(&leader)).then_some(leader);
                if leader.is_none() {
                    applied.incomplete = true;
                }
                state
                    .partitions
                    .insert(p.partition_index, PartitionState { leader, epoch });
            }
            self.topics.insert(key, state);
        }
        if self.all_topics {
            // Deleted topics go; the map holds only what the cluster has
            // or what the consumer still wants.
            self.topics
                .retain(|name, _| listed.contains(name) || self.wanted.contains(name));
            applied.listed_topics = Some(listed);
        }
        let failed_topics: Vec<&Arc<str>> = applied.topic_errors.iter().map(|(t, _)| t).collect();
        for tp in &self.wanted_partitions {
            // Unknown topics, missing partitions and partitions without a
            // leader may all appear later: ask again, backing off further
            // each time (topics with a fatal error are reported instead).
            if self.leader(tp).is_none() && !failed_topics.contains(&tp.topic_arc()) {
                applied.incomplete = true;
            }
        }
        if applied.incomplete {
            self.requested = true;
            self.retry.count_failure();
        } else {
            self.retry.succeeded(timers);
        }
        // Even a complete view is not refreshed again sooner than one
        // backoff: a burst of "leader moved" errors costs one request.
        self.retry.back_off(now, backoff, timers);
        applied
    }

    /// Changes whenever [`leader`](Self::leader) may answer differently.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The leader of a partition, if metadata names one.
    pub(crate) fn leader(&self, tp: &TopicPartition) -> Option<Leader> {
        let p = self
            .topics
            .get(tp.topic())?
            .partitions
            .get(&tp.partition())?;
        Some(Leader {
            broker: p.leader?,
            epoch: p.epoch,
        })
    }

    /// True once metadata has described the topic and it lacks the partition.
    pub(crate) fn partition_missing(&self, tp: &TopicPartition) -> bool {
        self.topics
            .get(tp.topic())
            .is_some_and(|t| t.error.is_ok() && !t.partitions.contains_key(&tp.partition()))
    }

    /// The topic's id (nil if the broker's metadata has none).
    pub(crate) fn topic_id(&self, topic: &str) -> Uuid {
        self.topics.get(topic).map_or(Uuid::NIL, |t| t.id)
    }

    /// A partition's leader moved (a fetch response named a new one).
    pub(crate) fn update_leader(&mut self, tp: &TopicPartition, broker: BrokerId, epoch: i32) {
        let known = self.brokers.contains_key(&broker);
        if let Some(p) = self
            .topics
            .get_mut(tp.topic())
            .and_then(|t| t.partitions.get_mut(&tp.partition()))
        {
            if known && p.epoch.is_none_or(|e| epoch > e) {
                p.leader = Some(broker);
                p.epoch = Some(epoch);
                self.generation += 1;
            }
        }
    }

    /// How many brokers metadata knows.
    pub(crate) fn broker_count(&self) -> usize {
        self.brokers.len()
    }

    pub(crate) fn broker(&self, id: BrokerId) -> Option<&BrokerAddress> {
        self.brokers.get(&id)
    }

    pub(crate) fn brokers(&self) -> impl Iterator<Item = (BrokerId, &BrokerAddress)> {
        self.brokers.iter().map(|(&id, addr)| (id, addr))
    }
}

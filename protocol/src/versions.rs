//! API-version negotiation: which version of each request to send to a broker.
//!
//! The version used for an API is the highest one that all three parties support:
//!
//! * the broker (its ApiVersions response, kept in an [`ApiVersionTable`]),
//! * kafka-protocol's encoder for the request (`<Req as Message>::VERSIONS`; note
//!   that `ApiKey::valid_versions()` in kafka-protocol 0.18 disagrees with the
//!   message types for OffsetCommit and OffsetFetch, so it is never used here),
//! * weir's decoder for the response (`ResponseBody::MIN_VERSION..=MAX_VERSION`).
//!
//! When the three do not overlap, [`VersionError`] names the API and all three
//! ranges, so a "broker too old" failure says exactly what is missing.
//!
//! See [`crate::messages::api_versions`] for the bootstrap, including the retry when
//! the broker answers ApiVersions itself with UNSUPPORTED_VERSION.

use std::fmt;

use kafka_protocol::protocol::Message;

use crate::frame::ApiRequest;
use crate::messages::ResponseBody;
use crate::messages::api_versions::{ApiVersionRange, ApiVersionsResponse};

/// The version ranges one broker supports, from its ApiVersions response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionTable {
    /// Sorted by api key, one entry per key.
    ranges: Vec<ApiVersionRange>,
}

impl ApiVersionTable {
    /// Build the table from a successful ApiVersions response. If a broker lists a
    /// key twice, the first entry wins.
    pub fn from_response(resp: &ApiVersionsResponse) -> Self {
        Self::from_ranges(resp.api_keys.iter().copied())
    }

    /// Build the table from explicit ranges (tests, scripted brokers).
    pub fn from_ranges(ranges: impl IntoIterator<Item = ApiVersionRange>) -> Self {
        let mut ranges: Vec<ApiVersionRange> = ranges.into_iter().collect();
        // Stable sort keeps the first of duplicate keys first; dedup keeps it.
        ranges.sort_by_key(|r| r.api_key);
        ranges.dedup_by_key(|r| r.api_key);
        Self { ranges }
    }

    /// The broker's range for `api_key`, if it listed the key.
    pub fn broker_range(&self, api_key: i16) -> Option<(i16, i16)> {
        self.ranges
            .binary_search_by_key(&api_key, |r| r.api_key)
            .ok()
            .and_then(|i| self.ranges.get(i))
            .map(|r| (r.min_version, r.max_version))
    }

    /// The highest version of `api_key` inside both the broker's range and
    /// `client_min..=client_max` (the client's encoder and decoder intersected).
    pub fn negotiate_key(
        &self,
        api_key: i16,
        api: &'static str,
        client_min: i16,
        client_max: i16,
    ) -> Result<i16, VersionError> {
        let broker = self.broker_range(api_key);
        let err = || VersionError {
            api,
            api_key,
            broker,
            client: (client_min, client_max),
        };
        let (bmin, bmax) = broker.ok_or_else(err)?;
        let lo = bmin.max(client_min);
        let hi = bmax.min(client_max);
        if lo <= hi { Ok(hi) } else { Err(err()) }
    }

    /// The version to send `Req` at, given that weir decodes its response with `Resp`:
    /// the highest version supported by the broker, by kafka-protocol's encoder for
    /// `Req`, and by `Resp`'s decoder.
    ///
    /// ```ignore
    /// let v = table.negotiate::<kafka_protocol::messages::FetchRequest, FetchResponse<'_>>()?;
    /// ```
    pub fn negotiate<Req: ApiRequest, Resp: ResponseBody<'static>>(
        &self,
    ) -> Result<i16, VersionError> {
        let (min, max) = client_range::<Req, Resp>();
        self.negotiate_key(Req::API_KEY, Req::NAME, min, max)
    }
}

/// The versions weir can both encode (`Req`) and decode (`Resp`). An empty range
/// (min > max) means weir cannot speak the API at all; tests check it never is.
pub fn client_range<Req: ApiRequest, Resp: ResponseBody<'static>>() -> (i16, i16) {
    debug_assert_eq!(
        Req::API_KEY,
        Resp::API_KEY,
        "request and response APIs differ"
    );
    let enc = <Req as Message>::VERSIONS;
    (
        enc.min.max(Resp::MIN_VERSION),
        enc.max.min(Resp::MAX_VERSION),
    )
}

/// No version of an API is supported by both the broker and weir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError {
    /// The API's name.
    pub api: &'static str,
    /// The API key.
    pub api_key: i16,
    /// The broker's range, or `None` if the broker does not list the API.
    pub broker: Option<(i16, i16)>,
    /// The range weir can encode and decode.
    pub client: (i16, i16),
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cmin, cmax) = self.client;
        match self.broker {
            None => write!(
                f,
                "the broker does not support the {} API (key {}); weir needs v{cmin}..=v{cmax}: \
                 upgrade the broker",
                self.api, self.api_key
            ),
            Some((bmin, bmax)) if bmax < cmin => write!(
                f,
                "the broker supports {} v{bmin}..=v{bmax} but weir needs v{cmin}..=v{cmax}: \
                 the broker is too old, upgrade it",
                self.api
            ),
            Some((bmin, bmax)) => write!(
                f,
                "the broker supports {} v{bmin}..=v{bmax} but weir supports only \
                 v{cmin}..=v{cmax}: the broker is newer than weir supports, upgrade weir",
                self.api
            ),
        }
    }
}

impl std::error::Error for VersionError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::api_versions::ApiVersionsResponse;
    use kafka_protocol::messages::ApiVersionsRequest;

    fn range(api_key: i16, min_version: i16, max_version: i16) -> ApiVersionRange {
        ApiVersionRange {
            api_key,
            min_version,
            max_version,
        }
    }

    #[test]
    fn negotiates_highest_common_version() {
        let t = ApiVersionTable::from_ranges([range(18, 0, 9), range(1, 0, 11), range(3, 0, 2)]);
        assert_eq!(
            t.negotiate::<ApiVersionsRequest, ApiVersionsResponse>(),
            Ok(4)
        );
        assert_eq!(t.negotiate_key(1, "Fetch", 4, 16), Ok(11));
        assert_eq!(t.broker_range(3), Some((0, 2)));
        assert_eq!(t.broker_range(2), None);
        let e = t.negotiate_key(3, "Metadata", 4, 12).unwrap_err();
        assert_eq!(e.broker, Some((0, 2)));
        let msg = e.to_string();
        assert!(
            msg.contains("Metadata v0..=v2") && msg.contains("too old"),
            "{msg}"
        );
        let e = t.negotiate_key(2, "ListOffsets", 1, 8).unwrap_err();
        assert!(
            e.to_string().contains("does not support the ListOffsets"),
            "{e}"
        );
        let t = ApiVersionTable::from_ranges([range(1, 20, 30)]);
        let e = t.negotiate_key(1, "Fetch", 4, 16).unwrap_err();
        assert!(e.to_string().contains("upgrade weir"), "{e}");
    }

    #[test]
    fn duplicates_keep_first() {
        let t = ApiVersionTable::from_ranges([range(1, 0, 5), range(1, 0, 12)]);
        assert_eq!(t.broker_range(1), Some((0, 5)));
    }

    #[test]
    fn client_range_intersects_encoder_and_decoder() {
        assert_eq!(
            client_range::<ApiVersionsRequest, ApiVersionsResponse>(),
            (0, 4)
        );
    }

    /// Every API weir sends has a non-empty range, with matching API keys; the pairs
    /// below are the ones the reactor and coordinator negotiate.
    #[test]
    fn every_request_has_a_usable_range() {
        use crate::messages::{fetch, group, list_offsets, metadata, sasl};
        use kafka_protocol::messages as kp;
        macro_rules! check {
            ($req:ty, $resp:ty, $want:expr) => {{
                let r = client_range::<$req, $resp>();
                assert_eq!(<$req as ApiRequest>::API_KEY, <$resp>::API_KEY);
                assert!(r.0 <= r.1, "{}: empty range {:?}", <$req>::NAME, r);
                assert_eq!(r, $want, "{}", <$req>::NAME);
            }};
        }
        check!(kp::FetchRequest, fetch::FetchResponse<'_>, (4, 18));
        check!(
            kp::DeleteGroupsRequest,
            group::DeleteGroupsResponse<'_>,
            (0, 2)
        );
        check!(
            kp::OffsetDeleteRequest,
            group::OffsetDeleteResponse<'_>,
            (0, 0)
        );
        check!(kp::MetadataRequest, metadata::MetadataResponse<'_>, (1, 13));
        check!(
            kp::ListOffsetsRequest,
            list_offsets::ListOffsetsResponse<'_>,
            (1, 10)
        );
        check!(
            kp::SaslHandshakeRequest,
            sasl::SaslHandshakeResponse<'_>,
            (0, 1)
        );
        check!(
            kp::SaslAuthenticateRequest,
            sasl::SaslAuthenticateResponse<'_>,
            (0, 2)
        );
        check!(
            kp::FindCoordinatorRequest,
            group::FindCoordinatorResponse<'_>,
            (0, 6)
        );
        check!(kp::JoinGroupRequest, group::JoinGroupResponse<'_>, (0, 9));
        check!(kp::SyncGroupRequest, group::SyncGroupResponse<'_>, (0, 5));
        check!(kp::HeartbeatRequest, group::HeartbeatResponse, (0, 4));
        check!(kp::LeaveGroupRequest, group::LeaveGroupResponse<'_>, (0, 5));
        // kafka-protocol 0.18's OffsetCommit/OffsetFetch *requests* stop below what
        // ApiKey::valid_versions() claims; the request type's VERSIONS wins.
        check!(
            kp::OffsetCommitRequest,
            group::OffsetCommitResponse<'_>,
            (2, 9)
        );
        check!(
            kp::OffsetFetchRequest,
            group::OffsetFetchResponse<'_>,
            (1, 9)
        );
        check!(
            kp::DescribeGroupsRequest,
            group::DescribeGroupsResponse<'_>,
            (0, 6)
        );
        check!(kp::ListGroupsRequest, group::ListGroupsResponse<'_>, (0, 5));

        // A broker that supports everything up to Kafka 4's versions.
        let t = ApiVersionTable::from_ranges([range(1, 0, 17), range(8, 0, 10)]);
        assert_eq!(
            t.negotiate::<kp::FetchRequest, fetch::FetchResponse<'_>>(),
            Ok(17)
        );
        assert_eq!(
            t.negotiate::<kp::OffsetCommitRequest, group::OffsetCommitResponse<'_>>(),
            Ok(9)
        );
        // Kafka 4.4 takes Fetch v18 (follower-side fields, tagged).
        let t = ApiVersionTable::from_ranges([range(1, 0, 18)]);
        assert_eq!(
            t.negotiate::<kp::FetchRequest, fetch::FetchResponse<'_>>(),
            Ok(18)
        );
    }
}

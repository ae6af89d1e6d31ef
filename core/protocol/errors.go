package protocol

// ErrorCode is a Kafka protocol error code. The broker reports outcomes with
// these codes so that a protocol server only copies them into responses.
type ErrorCode int16

// The codes the broker uses (values from the Kafka protocol).
const (
	ErrUnknownServerError          ErrorCode = -1
	ErrNone                        ErrorCode = 0
	ErrOffsetOutOfRange            ErrorCode = 1
	ErrCorruptMessage              ErrorCode = 2
	ErrUnknownTopicOrPartition     ErrorCode = 3
	ErrInvalidFetchSize            ErrorCode = 4
	ErrLeaderNotAvailable          ErrorCode = 5
	ErrNotLeaderOrFollower         ErrorCode = 6
	ErrRequestTimedOut             ErrorCode = 7
	ErrBrokerNotAvailable          ErrorCode = 8
	ErrReplicaNotAvailable         ErrorCode = 9
	ErrMessageTooLarge             ErrorCode = 10
	ErrOffsetMetadataTooLarge      ErrorCode = 12
	ErrNetworkException            ErrorCode = 13
	ErrCoordinatorLoadInProgress   ErrorCode = 14
	ErrCoordinatorNotAvailable     ErrorCode = 15
	ErrNotCoordinator              ErrorCode = 16
	ErrInvalidTopicException       ErrorCode = 17
	ErrRecordListTooLarge          ErrorCode = 18
	ErrNotEnoughReplicas           ErrorCode = 19
	ErrInvalidRequiredAcks         ErrorCode = 21
	ErrIllegalGeneration           ErrorCode = 22
	ErrInconsistentGroupProtocol   ErrorCode = 23
	ErrInvalidGroupID              ErrorCode = 24
	ErrUnknownMemberID             ErrorCode = 25
	ErrInvalidSessionTimeout       ErrorCode = 26
	ErrRebalanceInProgress         ErrorCode = 27
	ErrInvalidCommitOffsetSize     ErrorCode = 28
	ErrTopicAuthorizationFailed    ErrorCode = 29
	ErrUnsupportedVersion          ErrorCode = 35
	ErrTopicAlreadyExists          ErrorCode = 36
	ErrInvalidPartitions           ErrorCode = 37
	ErrInvalidReplicationFactor    ErrorCode = 38
	ErrInvalidReplicaAssignment    ErrorCode = 39
	ErrInvalidConfig               ErrorCode = 40
	ErrNotController               ErrorCode = 41
	ErrInvalidRequest              ErrorCode = 42
	ErrUnsupportedForMessageFormat ErrorCode = 43
	ErrPolicyViolation             ErrorCode = 44
	ErrOutOfOrderSequenceNumber    ErrorCode = 45
	ErrDuplicateSequenceNumber     ErrorCode = 46
	ErrInvalidProducerEpoch        ErrorCode = 47
	ErrInvalidTxnState             ErrorCode = 48
	ErrInvalidProducerIDMapping    ErrorCode = 49
	ErrInvalidTransactionTimeout   ErrorCode = 50
	ErrKafkaStorageError           ErrorCode = 56
	ErrUnknownProducerID           ErrorCode = 59
	ErrGroupIDNotFound             ErrorCode = 69
	ErrNonEmptyGroup               ErrorCode = 68
	ErrFencedLeaderEpoch           ErrorCode = 74
	ErrGroupSubscribedToTopic      ErrorCode = 86
	ErrUnknownLeaderEpoch          ErrorCode = 75
	ErrOffsetNotAvailable          ErrorCode = 78
	ErrMemberIDRequired            ErrorCode = 79
	ErrGroupMaxSizeReached         ErrorCode = 81
	ErrFencedInstanceID            ErrorCode = 82
	ErrInvalidRecord               ErrorCode = 87
	ErrUnknownTopicID              ErrorCode = 100
)

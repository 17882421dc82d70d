#!/bin/bash
# aws_api: the AWS API layer against moto, through `vaultfs aws whoami` and
# `vaultfs aws call`: STS GetCallerIdentity, a Query call (EC2), a JSON 1.0
# call (DynamoDB), a REST-JSON call (Backup), each checked from boto3's
# side; errors named "<service>: <Code>: <Message>"; throttling and server
# errors (the fault proxy's, in each protocol) retried; and the credentials users have: a role
# assumed through source_profile and through credential_source
# Ec2InstanceMetadata, web identity from the environment and from a
# profile, credential_process (good, failing, malformed), and the region
# from instance metadata.
. "$(dirname "$0")/lib.sh"
need_moto

METADATA=$VAULTFS_SRC/tests/tools/metadata_server.py
ACCT=123456789012 # moto's account

# --- identity, with the environment's keys -------------------------------
vf aws whoami >"$T/who"
cat "$T/who" >&2
expect_grep "^account      $ACCT\$" "$T/who"
expect_grep '^credentials  environment$' "$T/who"
expect_grep "^  backup     $AWS_ENDPOINT_URL \\(AWS_ENDPOINT_URL\\)\$" "$T/who"
expect_grep "^  s3         $AWS_ENDPOINT_URL_S3 \\(AWS_ENDPOINT_URL_S3\\)\$" "$T/who"
vf aws whoami --json >"$T/who.json"
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["account"])' "$T/who.json")" = "$ACCT" ] ||
	die "whoami --json: wrong account"

# the config's endpoints come after the environment's
cat >"$T/endpoints.json" <<EOF
{"endpoints": {"sts": "$AWS_ENDPOINT_URL", "backup": "http://127.0.0.1:9/b"}}
EOF
(
	unset AWS_ENDPOINT_URL
	vf aws whoami --config "$T/endpoints.json"
) >"$T/who.config"
expect_grep "^  sts        $AWS_ENDPOINT_URL \(config endpoints.sts\)\$" "$T/who.config"
expect_grep '^  backup     http://127.0.0.1:9/b \(config endpoints.backup\)$' "$T/who.config"
expect_grep '^  ec2        https://ec2.us-east-1.amazonaws.com \(default\)$' "$T/who.config"
AWS_ENDPOINT_URL_BACKUP=http://127.0.0.1:8/x vf aws whoami --config "$T/endpoints.json" >"$T/who.env"
expect_grep '^  backup     http://127.0.0.1:8/x \(AWS_ENDPOINT_URL_BACKUP\)$' "$T/who.env"

# --- Query: EC2 ------------------------------------------------------------
vf aws call ec2 CreateVolume AvailabilityZone=us-east-1a Size=1 >"$T/vol"
VOL=$(sed -n 's/^volumeId=//p' "$T/vol")
[ -n "$VOL" ] || die "CreateVolume: no volumeId"
vf aws call ec2 CreateSnapshot VolumeId="$VOL" "Description=vaultfs aws_api & co" >"$T/snap"
SNAP=$(sed -n 's/^snapshotId=//p' "$T/snap")
[ -n "$SNAP" ] || die "CreateSnapshot: no snapshotId"
# flattened list parameters reach the server as EC2 reads them
vf aws call ec2 DescribeSnapshots SnapshotId.1="$SNAP" >"$T/desc"
expect_grep "^snapshotSet.item.snapshotId=$SNAP\$" "$T/desc"
expect_grep '^snapshotSet.item.description=vaultfs aws_api & co$' "$T/desc"
[ "$(grep -c '^snapshotSet.item.snapshotId=' "$T/desc")" = 1 ] || die "DescribeSnapshots: more than the one asked for"
py_moto "$SNAP" <<'EOF'
import sys
s = client("ec2").describe_snapshots(SnapshotIds=[sys.argv[1]])["Snapshots"][0]
assert s["Description"] == "vaultfs aws_api & co", s
EOF

# --- JSON 1.0: DynamoDB ----------------------------------------------------
TABLE=vaultfs-aws-api-$$
vf aws call dynamodb CreateTable "{\"TableName\": \"$TABLE\",
  \"KeySchema\": [{\"AttributeName\": \"k\", \"KeyType\": \"HASH\"}],
  \"AttributeDefinitions\": [{\"AttributeName\": \"k\", \"AttributeType\": \"S\"}],
  \"BillingMode\": \"PAY_PER_REQUEST\"}" >"$T/table"
on_exit "py_moto $TABLE <<<'import sys; client(\"dynamodb\").delete_table(TableName=sys.argv[1])'"
py_moto "$TABLE" <<'EOF'
import sys
assert sys.argv[1] in client("dynamodb").list_tables()["TableNames"]
EOF
vf aws call dynamodb ListTables '{}' >"$T/tables"
expect_grep "\"$TABLE\"" "$T/tables"

# --- REST-JSON: Backup -----------------------------------------------------
VAULT=vaultfs-aws-api-$$
vf aws call backup CreateBackupVault PUT "/backup-vaults/$VAULT" '{}' >"$T/vault"
on_exit "py_moto $VAULT <<<'import sys; client(\"backup\").delete_backup_vault(BackupVaultName=sys.argv[1])'"
expect_grep "\"BackupVaultName\":[[:space:]]*\"$VAULT\"" "$T/vault"
vf aws call backup ListBackupVaults GET '/backup-vaults/?maxResults=100' >"$T/vaults"
expect_grep "\"BackupVaultName\":[[:space:]]*\"$VAULT\"" "$T/vaults"
py_moto "$VAULT" <<'EOF'
import sys
names = [v["BackupVaultName"] for v in client("backup").list_backup_vaults()["BackupVaultList"]]
assert sys.argv[1] in names, names
EOF

# --- errors: "<service>: <Code>: <Message>" --------------------------------
expect_fail vf aws call backup DescribeBackupVault GET "/backup-vaults/no-such-$$"
expect_grep "^vaultfs: aws: backup: ResourceNotFoundException: " "$FAIL_OUT"
expect_fail vf aws call dynamodb DescribeTable "{\"TableName\": \"no-such-$$\"}"
expect_grep "^vaultfs: aws: dynamodb: ResourceNotFoundException: Requested resource not found" "$FAIL_OUT"
expect_fail vf aws call ec2 DeleteSnapshot SnapshotId=snap-00000000
expect_grep '^vaultfs: aws: ec2: InvalidSnapshot.NotFound: ' "$FAIL_OUT"

# --- throttling answers are retried ----------------------------------------
# The fault proxy answers the first requests with the throttling error of
# each protocol, as AWS does (EC2's RequestLimitExceeded, STS's Throttling,
# the JSON and REST-JSON ThrottlingException), then lets requests through.
throttled() { # SERVICE VAR CALL...: the call succeeds after 2 throttles
	local svc=$1 var=$2
	shift 2
	start_faultproxy_moto --throttle 2
	(
		export "$var=$FP_URL"
		vf aws call "$svc" "$@"
	) >"$T/throttled.$svc" || die "$svc: a throttled call was not retried"
	[ "$(fp_stat throttles)" = 2 ] || die "$svc: the proxy throttled $(fp_stat throttles), not 2"
	log "$svc: throttled twice, then served"
}
throttled ec2 AWS_ENDPOINT_URL_EC2 DescribeVolumes
throttled sts AWS_ENDPOINT_URL_STS GetCallerIdentity
throttled dynamodb AWS_ENDPOINT_URL_DYNAMODB ListTables '{}'
throttled backup AWS_ENDPOINT_URL_BACKUP ListBackupVaults GET /backup-vaults/
expect_grep "^GetCallerIdentityResult.Account=$ACCT\$" "$T/throttled.sts"
# server errors are retried too
start_faultproxy_moto --5xx 2 --5xx-status 503
AWS_ENDPOINT_URL_DYNAMODB=$FP_URL vf aws call dynamodb ListTables '{}' >/dev/null
[ "$(fp_stat 5xxs)" = 2 ] || die "dynamodb: 503s not retried"
# a throttle that outlasts the attempts reaches the user by name
start_faultproxy_moto --throttle 10
AWS_ENDPOINT_URL_DYNAMODB=$FP_URL VAULTFS_AWS_MAX_ATTEMPTS=3 \
	expect_fail vf aws call dynamodb ListTables '{}'
expect_grep '^vaultfs: aws: dynamodb: ThrottlingException: .*\[gave up after 3 attempts\]$' "$FAIL_OUT"
[ "$(fp_stat throttles)" = 3 ] || die "dynamodb: $(fp_stat throttles) attempts, not 3"

# --- credentials from profiles ---------------------------------------------
# The environment's keys would win over any profile: the profile tests
# run without them.
# noenv [-u VAR]... [VAR=VALUE]... CMD...: CMD (a function too) in a
# subshell without the environment's keys
noenv() (
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	while [ "$1" = -u ]; do
		unset "$2"
		shift 2
	done
	while [[ $1 == [A-Z_]*=* ]]; do
		export "${1?}"
		shift
	done
	"$@"
)
# a credential helper, given one argument with a space to see the
# command split as the AWS CLI splits it
cat >"$T/helper" <<'EOF'
#!/bin/sh
[ "$1" = "arg with space" ] || { echo "helper: got '$1'" >&2; exit 2; }
echo '{"Version": 1, "AccessKeyId": "AKIAPROCESS000000001", "SecretAccessKey": "process/secret",'
echo ' "SessionToken": "process-token", "Expiration": "2099-01-01T00:00:00Z"}'
EOF
chmod +x "$T/helper"
echo "eyJ.web-identity-token" >"$T/token"
cat >"$AWS_SHARED_CREDENTIALS_FILE" <<EOF
[base]
aws_access_key_id = AKIABASEPROFILE00001
aws_secret_access_key = base/secret
EOF
cat >"$AWS_CONFIG_FILE" <<EOF
[profile prod]
role_arn = arn:aws:iam::$ACCT:role/prod
source_profile = base
role_session_name = vaultfs-test
external_id = ext-1
duration_seconds = 900
[profile web]
role_arn = arn:aws:iam::$ACCT:role/web
web_identity_token_file = $T/token
role_session_name = web-session
[profile proc]
credential_process = $T/helper "arg with space"
[profile procfail]
credential_process = sh -c 'echo "helper: no session for prod" >&2; exit 1'
[profile procbad]
credential_process = echo '{"Version": 1, "AccessKeyId": "AKIA"'
[profile imdsrole]
role_arn = arn:aws:iam::$ACCT:role/from-imds
credential_source = Ec2InstanceMetadata
role_session_name = imds-session
EOF

noenv vf aws whoami --profile prod >"$T/prod"
cat "$T/prod" >&2
expect_grep "^arn          arn:aws:sts::$ACCT:assumed-role/prod/vaultfs-test\$" "$T/prod"
expect_grep '^credentials  assume-role \(profile prod\)$' "$T/prod"

# --profile names the profile outright: the environment's keys are not used
vf aws whoami --profile prod >"$T/prod2"
expect_grep '^credentials  assume-role \(profile prod\)$' "$T/prod2"

noenv vf aws whoami --profile web >"$T/web"
expect_grep "^arn          arn:aws:sts::$ACCT:assumed-role/web/web-session\$" "$T/web"
expect_grep '^credentials  web-identity \(profile web\)$' "$T/web"

noenv AWS_WEB_IDENTITY_TOKEN_FILE="$T/token" AWS_ROLE_ARN="arn:aws:iam::$ACCT:role/eks" \
	AWS_ROLE_SESSION_NAME=eks-pod vf aws whoami >"$T/webenv"
expect_grep '^credentials  web-identity \(AWS_WEB_IDENTITY_TOKEN_FILE\)$' "$T/webenv"
expect_grep "^arn          arn:aws:sts::$ACCT:assumed-role/eks/eks-pod\$" "$T/webenv"
noenv AWS_WEB_IDENTITY_TOKEN_FILE="$T/no-token" AWS_ROLE_ARN="arn:aws:iam::$ACCT:role/eks" \
	expect_fail vf aws whoami
expect_grep "credentials: web identity: AWS_WEB_IDENTITY_TOKEN_FILE $T/no-token: No such file or directory" "$FAIL_OUT"

noenv vf aws whoami --profile proc >"$T/proc"
expect_grep '^credentials  credential_process \(profile proc\)$' "$T/proc"
expect_grep "^account      $ACCT\$" "$T/proc"
noenv expect_fail vf aws whoami --profile procfail
expect_grep "credentials: profile procfail: credential_process exited 1: helper: no session for prod\$" "$FAIL_OUT"
noenv expect_fail vf aws whoami --profile procbad
expect_grep "credentials: profile procbad: credential_process output: the answer is not JSON" "$FAIL_OUT"

# --- instance metadata: a role's source, and the region --------------------
python3 "$METADATA" --region eu-west-2 >"$T/md.out" 2>"$T/md.err" &
MD_PID=$!
on_exit "kill $MD_PID"
MD_PORT=
for i in $(seq 1 100); do
	MD_PORT=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$T/md.out")
	[ -n "$MD_PORT" ] && break
	sleep 0.1
done
[ -n "$MD_PORT" ] || die "metadata server did not start"
MD=http://127.0.0.1:$MD_PORT
noenv -u AWS_EC2_METADATA_DISABLED AWS_EC2_METADATA_SERVICE_ENDPOINT=$MD \
	vf aws whoami --profile imdsrole >"$T/imdsrole"
expect_grep "^arn          arn:aws:sts::$ACCT:assumed-role/from-imds/imds-session\$" "$T/imdsrole"
[ "$(curl -fsS "$MD/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["imds_creds"])')" -ge 1 ] ||
	die "the role's source credentials were not read from instance metadata"

noenv -u AWS_EC2_METADATA_DISABLED -u AWS_REGION -u AWS_DEFAULT_REGION \
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$MD vf aws whoami --profile base >"$T/region"
expect_grep '^region       eu-west-2 \(EC2 instance metadata\)$' "$T/region"
expect_grep '^  ec2        ' "$T/region"

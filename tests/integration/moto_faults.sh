#!/bin/bash
# moto_faults: the fault proxy in front of moto answers throttling and
# server errors in each AWS protocol the way AWS does, as an independent
# client (botocore) parses them: the error code, the HTTP status, and that
# botocore's own retry logic takes a throttle for a throttle. Then it lets
# requests through. The aws-backup provider's retry tests stand on this.
. "$(dirname "$0")/lib.sh"
need_moto

# One proxy per case, all started first, then one Python runs every case:
# "SERVICE CODE STATUS RETRY URL", RETRY 1: a second call through the same
# proxy must succeed after exactly one retry by botocore itself.
cases=() stats=()
case_() { # PROXY-ARGS... -- SERVICE CODE STATUS RETRY
	local args=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	start_faultproxy_moto "${args[@]}"
	cases+=("$* $FP_URL")
	stats+=("$FP_STATS")
}
# throttles, one per protocol (Query for EC2 and STS, JSON 1.0, REST-JSON)
case_ --throttle 2 -- ec2 RequestLimitExceeded 503 1
case_ --throttle 2 -- sts Throttling 400 1
case_ --throttle 2 -- dynamodb ThrottlingException 400 1
case_ --throttle 2 -- backup ThrottlingException 400 1
# server errors: 500 by default, 503 on request
case_ --5xx 2 -- ec2 InternalError 500 1
case_ --5xx 1 -- backup InternalFailure 500 0
case_ --5xx 1 --5xx-status 503 -- sts ServiceUnavailable 503 0
case_ --5xx 1 --5xx-status 503 -- dynamodb ServiceUnavailable 503 0
# --match: a Backup call passes untouched, then the STS call is throttled
case_ --throttle 1 --match Action=GetCallerIdentity -- backup+sts Throttling 400 0

py_moto "${cases[@]}" <<'EOF' || die "an error through the proxy is not as AWS answers it"
import botocore.config, botocore.exceptions, boto3


def at(url, service, attempts=1):
    return boto3.client(service, endpoint_url=url,
                        region_name=os.environ.get("AWS_REGION", "us-east-1"),
                        config=botocore.config.Config(
                            retries={"mode": "standard", "total_max_attempts": attempts}))


calls = {
    "ec2": lambda c: c.describe_volumes(),
    "sts": lambda c: c.get_caller_identity(),
    "dynamodb": lambda c: c.list_tables(),
    "backup": lambda c: c.list_backup_vaults(),
}
bad = 0
for case in sys.argv[1:]:
    services, code, status, retry, url = case.split()
    *before, service = services.split("+")
    for s in before:  # not matched by --match: must pass
        calls[s](at(url, s))
    try:
        calls[service](at(url, service))
        print("FAIL: %s succeeded through the proxy" % case)
        bad = 1
        continue
    except botocore.exceptions.ClientError as e:
        got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
    if got != (code, int(status)):
        print("FAIL: %s: %s %d" % ((case,) + got))
        bad = 1
        continue
    print("%s: %s %s, as AWS answers it" % (services, code, status))
    if retry == "1":
        r = calls[service](at(url, service, attempts=5))
        n = r["ResponseMetadata"]["RetryAttempts"]
        print("%s: botocore retried %d time(s), then succeeded" % (service, n))
        bad |= n != 1
sys.exit(bad)
EOF

# the counters: what each proxy answered itself, what it let through
want=("throttles 2 5xxs 0" "throttles 2 5xxs 0" "throttles 2 5xxs 0" "throttles 2 5xxs 0"
	"throttles 0 5xxs 2" "throttles 0 5xxs 1" "throttles 0 5xxs 1" "throttles 0 5xxs 1"
	"throttles 1 5xxs 0")
for i in "${!cases[@]}"; do
	FP_STATS=${stats[i]}
	got="throttles $(fp_stat throttles) 5xxs $(fp_stat 5xxs)"
	[ "$got" = "${want[i]}" ] || die "${cases[i]}: counted $got, not ${want[i]}"
done
FP_STATS=${stats[0]}
[ "$(fp_stat forwarded)" = 1 ] || die "ec2: $(fp_stat forwarded) requests passed after the throttles, not 1"
FP_STATS=${stats[8]}
[ "$(fp_stat forwarded)" = 1 ] || die "--match: $(fp_stat forwarded) requests passed, not the 1 unmatched"
log "throttling and server errors of EC2, STS, DynamoDB and Backup, counted, then through"

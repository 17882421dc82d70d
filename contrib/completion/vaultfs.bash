# bash completion for vaultfs                             -*- shell-script -*-
#
# Installed as share/bash-completion/completions/vaultfs (cmake --install).
# Commands, subcommands and each command's options; files and directories
# where a path goes. Keep in step with cli/ (tests/integration/cli_usage.sh
# checks every command's options against its --help).

_vaultfs()
{
	local cur prev cmd sub i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}

	local commands="archive restore s3 run status bucket mount verify aws help"
	local s3opts="--endpoint-url --region --profile --expected-bucket-owner"
	local upopts="--expected-size --part-size --concurrency --storage-class
		--sse --sse-kms-key-id --unsigned-payload"

	# the command and subcommand: the first words that are not options
	cmd= sub=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*)
			if [ -z "$cmd" ]; then
				cmd=${COMP_WORDS[i]}
			elif [ -z "$sub" ]; then
				sub=${COMP_WORDS[i]}
			fi
			;;
		esac
	done

	case $prev in
	--config | -c | --manifest | --log)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--mode)
		COMPREPLY=($(compgen -W "auto tree raw" -- "$cur"))
		return
		;;
	--codec)
		COMPREPLY=($(compgen -W "gzip zstd none" -- "$cur"))
		return
		;;
	--sse)
		COMPREPLY=($(compgen -W "AES256 aws:kms" -- "$cur"))
		return
		;;
	--level | --threads | --path | --overlay-limit | --expected-size | --part-size | \
		--concurrency | --storage-class | --sse-kms-key-id | \
		--endpoint-url | --region | --profile | -p | \
		--expected-bucket-owner | --uid | --gid | --umask | \
		--list-max-keys | --ready-fd)
		return # a value of the user's
		;;
	esac

	if [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
		return
	fi

	local opts=
	case $cmd in
	help)
		[ -z "$sub" ] && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		return
		;;
	archive)
		opts="--mode --codec --level --threads --manifest --strict
			--overlay-limit --force --quiet --help $upopts $s3opts"
		;;
	verify) opts="--manifest --threads --quiet --help $s3opts" ;;
	restore)
		opts="--path --threads --strict --config --quiet --help $s3opts"
		;;
	s3)
		if [ -z "$sub" ]; then
			COMPREPLY=($(compgen -W "cp ls rm mb --help" -- "$cur"))
			return
		fi
		opts="--recursive --quiet --help $upopts $s3opts"
		;;
	run)
		opts="--config --once --retry-failed --allow-incomplete --log
			--log-format --quiet --verbose --help"
		;;
	status) opts="--config --json --wide --check --since --help" ;;
	bucket)
		if [ -z "$sub" ]; then
			COMPREPLY=($(compgen -W "setup --help" -- "$cur"))
			return
		fi
		opts="--config --dry-run --help"
		;;
	mount)
		opts="--config --foreground --allow-other --uid --gid --umask
			--whole-bucket --list-max-keys --allow-overwrite
			--allow-delete --ready-fd --log --log-format --verbose
			--debug-fuse
			--help"
		;;
	aws)
		if [ -z "$sub" ]; then
			COMPREPLY=($(compgen -W "whoami call --help" -- "$cur"))
			return
		fi
		opts="--config --profile --json --help"
		;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _vaultfs vaultfs

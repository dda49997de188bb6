# SPDX-License-Identifier: GPL-2.0
# bash completion for ftctl(8).  Source it, or install it as
# /usr/share/bash-completion/completions/ftctl.

_ftctl_vms()
{
	ftctl -j vm list 2>/dev/null | grep -o '"name":"[^"]*"' | cut -d'"' -f4
}

_ftctl_services()
{
	ftctl -j service list 2>/dev/null | grep -o '"name":"[^"]*"' | cut -d'"' -f4
}

_ftctl_ifaces()
{
	COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur"))
}

_ftctl()
{
	local cur prev words cword obj verb i
	# bash-completion's helper when it is there, the basics otherwise.
	if declare -F _init_completion >/dev/null; then
		_init_completion || return
	else
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
		cur=${words[cword]}
		prev=${words[cword - 1]}
	fi

	# Skip the options to find OBJECT and COMMAND.
	for ((i = 1; i < cword; i++)); do
		[[ ${words[i]} == -* ]] && continue
		if [[ -z ${obj:-} ]]; then
			obj=${words[i]}
		elif [[ -z ${verb:-} ]]; then
			verb=${words[i]}
			break
		fi
	done

	if [[ -z ${obj:-} ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '-json -pretty -Version -help' -- "$cur"))
		else
			COMPREPLY=($(compgen -W 'status vm service session monitor stats placement target attach detach help' -- "$cur"))
		fi
		return
	fi

	case $obj in
	vm)
		if [[ -z ${verb:-} ]]; then
			COMPREPLY=($(compgen -W 'add del list show set fail drain help' -- "$cur"))
			return
		fi
		case $prev in
		dev) _ftctl_ifaces; return ;;
		probe) COMPREPLY=($(compgen -W 'icmp tcp none' -- "$cur")); return ;;
		state) COMPREPLY=($(compgen -W 'up' -- "$cur")); return ;;
		netns) COMPREPLY=($(compgen -W "$(ip netns list 2>/dev/null | cut -d' ' -f1)" -- "$cur")); return ;;
		silent-exit) COMPREPLY=($(compgen -W 'on off' -- "$cur")); return ;;
		id|mac|capacity|domain|interval|misses|name|icmp|tcp) return ;;
		esac
		case $verb in
		add)
			COMPREPLY=($(compgen -W 'id dev mac capacity domain netns silent-exit probe interval misses' -- "$cur")) ;;
		set)
			if ((cword == i + 1)); then
				COMPREPLY=($(compgen -W "$(_ftctl_vms) id" -- "$cur"))
			else
				COMPREPLY=($(compgen -W 'name dev mac capacity domain netns silent-exit probe interval misses state' -- "$cur"))
			fi ;;
		del|show|fail|drain)
			((cword == i + 1)) && COMPREPLY=($(compgen -W "$(_ftctl_vms) id" -- "$cur")) ;;
		esac
		;;
	service)
		if [[ -z ${verb:-} ]]; then
			COMPREPLY=($(compgen -W 'add del list show set help' -- "$cur"))
			return
		fi
		case $prev in
		criterion) COMPREPLY=($(compgen -W 'hash least-loaded' -- "$cur")); return ;;
		anti-affinity) COMPREPLY=($(compgen -W 'on off' -- "$cur")); return ;;
		commit) COMPREPLY=($(compgen -W 'strict relaxed' -- "$cur")); return ;;
		replication-interval|ckpt-wait) return ;;
		esac
		case $verb in
		add)
			((cword >= i + 3)) && COMPREPLY=($(compgen -W 'criterion anti-affinity replication-interval commit ckpt-wait' -- "$cur")) ;;
		set)
			if ((cword == i + 1)); then
				COMPREPLY=($(compgen -W "$(_ftctl_services)" -- "$cur"))
			else
				COMPREPLY=($(compgen -W 'criterion anti-affinity replication-interval commit ckpt-wait' -- "$cur"))
			fi ;;
		del|show)
			((cword == i + 1)) && COMPREPLY=($(compgen -W "$(_ftctl_services)" -- "$cur")) ;;
		esac
		;;
	session)
		if [[ -z ${verb:-} ]]; then
			COMPREPLY=($(compgen -W 'list show help' -- "$cur"))
			return
		fi
		case $prev in
		vm) COMPREPLY=($(compgen -W "$(_ftctl_vms)" -- "$cur")) ;;
		service) COMPREPLY=($(compgen -W "$(_ftctl_services)" -- "$cur")) ;;
		client) ;;
		*) COMPREPLY=($(compgen -W 'vm service client unprotected' -- "$cur")) ;;
		esac
		;;
	monitor)
		[[ $prev == count ]] || COMPREPLY=($(compgen -W 'count help' -- "$cur"))
		;;
	attach|detach)
		_ftctl_ifaces
		;;
	esac
} &&
complete -F _ftctl ftctl

/*
 * commands.h - the subcommands of the one `vaultfs` executable. Each takes
 * the arguments after its name (argv[0] is the subcommand name) and returns
 * the process exit status. Errors are printed as "vaultfs: CMD: message".
 */
#ifndef VAULTFS_COMMANDS_H
#define VAULTFS_COMMANDS_H

struct vf_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

/* The table, terminated by a NULL name (main.c). */
extern const struct vf_command vf_commands[];

/* `vaultfs s3 cp|ls|rm|mb` (cmd_s3.c). */
int cmd_s3(int argc, char **argv);

/* `vaultfs archive SRC DEST` (cmd_archive.c). */
int cmd_archive(int argc, char **argv);

/* `vaultfs run [--config F] [--once]` (cmd_run.c). */
int cmd_run(int argc, char **argv);

/* `vaultfs status [--config F] [--json]` (cmd_status.c). */
int cmd_status(int argc, char **argv);

/* `vaultfs bucket setup [--config F]` (cmd_bucket.c). */
int cmd_bucket(int argc, char **argv);

/* `vaultfs mount MOUNTPOINT [--config F] [--foreground] ...`
 * (cmd_mount.c). */
int cmd_mount(int argc, char **argv);

/* `vaultfs verify URL` (cmd_verify.c). */
int cmd_verify(int argc, char **argv);

/* `vaultfs restore SRC DEST [--path P]... [--threads N] [--strict]`
 * (cmd_restore.c). */
int cmd_restore(int argc, char **argv);

/* `vaultfs aws whoami [--config F] [--profile P] [--json]` (cmd_aws.c). */
int cmd_aws(int argc, char **argv);

struct orch_config;
/*
 * Load the --config file (NULL: the embedded default) into cfg for command
 * `cmd`. Returns 0, or the exit status after printing "vaultfs: CMD:
 * config: ..." (cmd_run.c).
 */
int vf_load_config(const char *cmd, const char *path, struct orch_config *cfg);

#endif

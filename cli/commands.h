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

#endif

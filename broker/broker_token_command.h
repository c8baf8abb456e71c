//  broker_token_command: `lynx-broker token create|list|revoke`, run on the broker's host
//  against its data dir (while the broker runs or not: the store is SQLite in WAL mode).
#ifndef BROKER_TOKEN_COMMAND_H_INCLUDED
#define BROKER_TOKEN_COMMAND_H_INCLUDED

//  argv[0] is "token". Returns the process exit status (0, 1 on failure, 2 on bad usage).
int broker_token_command(int argc, char **argv, char **envp);

#endif

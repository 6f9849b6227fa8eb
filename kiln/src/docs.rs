//! The guides under docs/, compiled as doctests so their examples stay true.
//!
//! Each markdown file is the documentation of one item below, so
//! `cargo test -p kiln --doc` compiles (and, unless marked `no_run`, runs)
//! every Rust block in it. A new file under docs/ gets an item here.

/// docs/README.md
#[doc = include_str!("../../docs/README.md")]
#[derive(Debug)]
pub struct Index;

/// docs/tutorial/01-first-app.md
#[doc = include_str!("../../docs/tutorial/01-first-app.md")]
#[derive(Debug)]
pub struct TutorialFirstApp;

/// docs/topics/apps-and-projects.md
#[doc = include_str!("../../docs/topics/apps-and-projects.md")]
#[derive(Debug)]
pub struct TopicAppsAndProjects;

/// docs/topics/urls.md
#[doc = include_str!("../../docs/topics/urls.md")]
#[derive(Debug)]
pub struct TopicUrls;

/// docs/topics/views-and-errors.md
#[doc = include_str!("../../docs/topics/views-and-errors.md")]
#[derive(Debug)]
pub struct TopicViewsAndErrors;

/// docs/topics/middleware.md
#[doc = include_str!("../../docs/topics/middleware.md")]
#[derive(Debug)]
pub struct TopicMiddleware;

/// docs/topics/static-files-and-streaming.md
#[doc = include_str!("../../docs/topics/static-files-and-streaming.md")]
#[derive(Debug)]
pub struct TopicStaticFilesAndStreaming;

/// docs/topics/forms.md
#[doc = include_str!("../../docs/topics/forms.md")]
#[derive(Debug)]
pub struct TopicForms;

/// docs/topics/file-uploads.md
#[doc = include_str!("../../docs/topics/file-uploads.md")]
#[derive(Debug)]
pub struct TopicFileUploads;

/// docs/topics/security.md
#[doc = include_str!("../../docs/topics/security.md")]
#[derive(Debug)]
pub struct TopicSecurity;

/// docs/topics/messages.md
#[doc = include_str!("../../docs/topics/messages.md")]
#[derive(Debug)]
pub struct TopicMessages;

/// docs/topics/cache.md
#[doc = include_str!("../../docs/topics/cache.md")]
#[derive(Debug)]
pub struct TopicCache;

/// docs/topics/sessions.md
#[doc = include_str!("../../docs/topics/sessions.md")]
#[derive(Debug)]
pub struct TopicSessions;

/// docs/topics/models-and-migrations.md
#[doc = include_str!("../../docs/topics/models-and-migrations.md")]
#[derive(Debug)]
pub struct TopicModelsAndMigrations;

/// docs/topics/templates.md
#[doc = include_str!("../../docs/topics/templates.md")]
#[derive(Debug)]
pub struct TopicTemplates;

/// docs/topics/settings.md
#[doc = include_str!("../../docs/topics/settings.md")]
#[derive(Debug)]
pub struct TopicSettings;

/// docs/topics/realtime.md
#[doc = include_str!("../../docs/topics/realtime.md")]
#[derive(Debug)]
pub struct TopicRealtime;

/// docs/topics/socketio.md
#[cfg(feature = "socketio")]
#[doc = include_str!("../../docs/topics/socketio.md")]
#[derive(Debug)]
pub struct TopicSocketIo;

/// docs/topics/testing.md
#[doc = include_str!("../../docs/topics/testing.md")]
#[derive(Debug)]
pub struct TopicTesting;

/// docs/topics/deployment.md
#[doc = include_str!("../../docs/topics/deployment.md")]
#[derive(Debug)]
pub struct TopicDeployment;

/// docs/howto/new-project.md
#[doc = include_str!("../../docs/howto/new-project.md")]
#[derive(Debug)]
pub struct HowtoNewProject;

/// docs/ref/settings.md
#[doc = include_str!("../../docs/ref/settings.md")]
#[derive(Debug)]
pub struct RefSettings;

/// docs/ref/cli.md
#[doc = include_str!("../../docs/ref/cli.md")]
#[derive(Debug)]
pub struct RefCli;

/// docs/internals/decisions.md
#[doc = include_str!("../../docs/internals/decisions.md")]
#[derive(Debug)]
pub struct InternalsDecisions;

/// docs/topics/auth.md
#[doc = include_str!("../../docs/topics/auth.md")]
#[derive(Debug)]
pub struct TopicAuth;

/// docs/topics/channel-layers.md
#[doc = include_str!("../../docs/topics/channel-layers.md")]
#[derive(Debug)]
pub struct TopicChannelLayers;

/// docs/topics/sse.md
#[doc = include_str!("../../docs/topics/sse.md")]
#[derive(Debug)]
pub struct TopicSse;

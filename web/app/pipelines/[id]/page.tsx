import { PipelineEditor } from "@/components/editor/pipeline-editor";

export default async function PipelinePage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return <PipelineEditor pipelineId={id} />;
}
